import type { EntityManager } from 'typeorm';
import type { IBaseEvent } from './base-event.interface.js';
import type { QueueEventOptions } from './queue-event-options.interface.js';
import type { TSerializableValues } from './worker-attributes.interface.js';

/** Options of one dispatch. */
export interface DispatchOptions {
  /**
   * The EntityManager of an open transaction of the queue's DataSource (`dataSource.transaction(async
   * (manager) => …)`): the row is written in that transaction, so a rollback leaves no row and the
   * event becomes due when the transaction commits.
   */
  manager?: EntityManager;
  /** Not claimable before this many seconds from now (≥ 0). */
  delaySeconds?: number;
  /** Not claimable before this instant (one of delaySeconds and runAt). */
  runAt?: Date;
  /**
   * Claim order among due events of the queue: lower runs first (as in BullMQ and graphile-worker),
   * equal priorities oldest first. An integer; default the class's `@QueueEvent({ priority })`, else 0.
   */
  priority?: number;
  /**
   * While a pending or running event of the same queue holds this key, the dispatch adds no row and
   * resolves to that event's id. Enforced by a unique index, so it holds across processes.
   */
  uniqueKey?: string;
  /**
   * The flow-control key (keyConcurrency, keyRateLimit): a non-empty string of at most 255 characters.
   * Default: `@QueueEvent({ concurrencyKey })` of the class, else the event's `getConcurrencyKey()`.
   */
  concurrencyKey?: string;
  /**
   * With uniqueKey: the key dispatches at most once per this many seconds (> 0). A later dispatch in
   * the period adds nothing and resolves to the id of the event the period began with, whether it
   * waits, runs or has finished.
   */
  throttleSeconds?: number;
  /**
   * With uniqueKey: while an event with the key waits, a later dispatch replaces its payload and makes
   * it due this many seconds (≥ 0) from now, resolving to its id; once it runs, a later dispatch adds
   * a new event. The last payload of a burst runs once, after the burst.
   */
  debounceSeconds?: number;
}

/** What WorkerService needs of an event service: dispatch, and turning a stored row back into an event. */
export interface IEventService {
  /** Stores a queued event (resolves to its row id) or runs an unqueued one at once (resolves to undefined). */
  dispatch(event: IBaseEvent, options?: DispatchOptions): Promise<string | undefined>;
  /** Rebuilds a registered event from its stored name and payload, dependencies injected. Throws UnknownEventError. */
  createEvent(eventName: string, payload: TSerializableValues | null): IBaseEvent;
  /** Options declared with @QueueEvent() for that name (they win over the queue's options). */
  getEventOptions(eventName: string): QueueEventOptions | undefined;
}
