import type { EventExecution, IBaseEvent } from '../interfaces/base-event.interface.js';
import type { JsonValue } from '../interfaces/job-state.interface.js';
import { getQueueEventMetadata } from '../worker-metadata.accessor.js';
import { progressSinkOf, serializeProgress } from './event-progress.js';
import { EventSnooze } from './event-snooze.js';

/**
 * An event: data (the payload) plus what to do with it (`execute`). With a queue (from
 * @QueueEvent() or an overridden getQueueName()) dispatch stores it for a worker; without one
 * dispatch runs it at once.
 */
export abstract class BaseEvent<TPayload = unknown, TResult = unknown> implements IBaseEvent<TPayload, TResult> {
  constructor(protected readonly payload: TPayload) {}

  /**
   * Does the work. `signal` is aborted when the attempt passes its timeoutSeconds (and when the event
   * is cancelled): long work should stop on it (pass it to fetch, check `signal.aborted` in loops).
   * What it returns is the event's result (kept with it in the history when its queue or class has
   * keepCompleted; it must survive a JSON round trip); `return this.snooze(seconds)` puts it back.
   */
  abstract execute(signal?: AbortSignal): EventExecution<TResult>;

  /**
   * `return this.snooze(seconds)` from execute(): the event is due again `seconds` from now (on the
   * database's clock) and this attempt does not count; its last error is kept.
   */
  protected snooze(seconds: number): EventSnooze {
    return new EventSnooze(seconds);
  }

  /** The queue this event is stored on, or undefined to run it synchronously at dispatch. */
  getQueueName(): string | undefined {
    return getQueueEventMetadata(this.constructor)?.queueName;
  }

  getPayload(): TPayload {
    return this.payload;
  }

  /** The registered name stored with each row. */
  getName(): string {
    return eventNameOf(this.constructor);
  }

  /**
   * The flow-control key of this event (keyConcurrency, keyRateLimit count running and started
   * events per key), used when neither dispatch's `concurrencyKey` nor `@QueueEvent({ concurrencyKey })`
   * gives one. Override it to compute the key from the payload (`return this.payload.userId`); a
   * non-empty string of at most 255 characters, or undefined (the default) for no key.
   */
  getConcurrencyKey(): string | undefined {
    return undefined;
  }

  /**
   * Reports how far execute() has got: a number or a small JSON value (at most MAX_PROGRESS_BYTES),
   * shown by getJob() while the event runs. It is written with the next lease renewal (heartbeat),
   * not at once: many reports between two heartbeats cost one write, of the last value. A value
   * that does not serialize (a function, a cycle, BigInt, too large) throws
   * UnserializableProgressError here, and nothing is recorded. Outside a worker's run (an event
   * run synchronously at dispatch, or one constructed and executed by hand) the value is checked
   * the same way and then dropped: there is no row to show it.
   */
  reportProgress(value: JsonValue): void {
    const json = serializeProgress(this.getName(), value);
    progressSinkOf(this)?.noteProgress(json);
  }
}

export function eventNameOf(eventClass: Function): string {
  return getQueueEventMetadata(eventClass)?.name ?? eventClass.name;
}
