import type { EventSnooze } from '../events/event-snooze.js';

/** What execute() may return: its result, or a snooze (BaseEvent.snooze), or a promise of either. */
export type EventExecution<TResult = unknown> = TResult | EventSnooze | Promise<TResult | EventSnooze>;

/**
 * What every event offers (BaseEvent implements it). The layers below the event model (interfaces,
 * storage, lifecycle) speak of events through this shape, never through the class.
 */
export interface IBaseEvent<TPayload = unknown, TResult = unknown> {
  /** Does the work and returns its result (or a snooze); `signal` is aborted on timeout and on cancel. */
  execute(signal?: AbortSignal): EventExecution<TResult>;
  /** The queue this event is stored on, or undefined to run it synchronously at dispatch. */
  getQueueName(): string | undefined;
  getPayload(): TPayload;
  /** The registered name stored with each row. */
  getName(): string;
  /**
   * The flow-control key of this event (keyConcurrency, keyRateLimit), when neither dispatch's
   * `concurrencyKey` nor `@QueueEvent({ concurrencyKey })` gives one: a non-empty string of at most
   * 255 characters, or undefined for no key.
   */
  getConcurrencyKey?(): string | undefined;
}

/** A concrete event class. */
export type EventClass<TEvent extends IBaseEvent = IBaseEvent> = new (payload: never) => TEvent;
