import type { BackoffOption } from './backoff.interface.js';
import type { RetentionOptions } from './job-state.interface.js';

/** Options given to `@QueueEvent(queue, options)`; they win over the queue's options. */
export interface QueueEventOptions {
  /** Stable registered name (stored in each row); defaults to the class name. */
  name?: string;
  retries?: number;
  runAfterSeconds?: number;
  /** How the retry delay grows (see BackoffOption). */
  backoff?: BackoffOption;
  /** An attempt running longer fails with EventTimeoutError (its AbortSignal is aborted). */
  timeoutSeconds?: number;
  /** Default claim priority of this class's events (lower runs first; an integer, default 0). */
  priority?: number;
  /**
   * Keep this class's completed and cancelled events in the history (see the queue option of the same
   * name, which this one overrides; false: never keep them).
   */
  keepCompleted?: boolean | RetentionOptions;
  /**
   * The flow-control key of this class's events, computed from the payload at dispatch (a non-empty
   * string of at most 255 characters, or undefined for no key). Dispatch's `concurrencyKey` wins; the
   * event's own `getConcurrencyKey()` is used when neither is given.
   */
  concurrencyKey?: (payload: never) => string | undefined;
  /** This class's limit per concurrency key (see the queue option of the same name, which this one overrides). */
  keyConcurrency?: number;
}
