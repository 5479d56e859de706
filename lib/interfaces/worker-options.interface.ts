import type { BackoffOption } from './backoff.interface.js';
import type { RetentionOptions } from './job-state.interface.js';
import type { IWorkerCreatorConstructor } from './worker-creator.interface.js';

/** Options of one `runWorker` call, larascript-events' `TEventWorkerOptions`. */
export type TEventWorkerOptions = {
  /** Name of the queue to process; the worker touches no other queue. */
  queueName: string;
  /** Maximum total attempts of an event (retries 3: at most 3 runs). */
  retries: number;
  /** Delay in seconds before a failed event is due again. */
  runAfterSeconds: number;
  /**
   * true: one pass over what is due when the call starts. false/omitted: passes until nothing is
   * due (retries that fall due during the run are run too). Either way the call returns.
   */
  runOnce?: boolean;
  /**
   * The creator class for failed rows. Optional here (larascript-events requires it): when omitted, or when it
   * is the class of the creator already set, the configured creator instance is used.
   */
  workerCreator?: IWorkerCreatorConstructor;
  /** Events run at once (defaults to the queue's configured concurrency, else 1). */
  concurrency?: number;
  /**
   * Rows claimed per round trip (default: the queue's batchSize, else concurrency). More than
   * concurrency keeps lanes busy without a claim between events; completions of a batch are
   * deleted together.
   */
  batchSize?: number;
  /** How the retry delay grows; default 'fixed' (always runAfterSeconds). */
  backoff?: BackoffOption;
  /** Seconds an attempt may run before it fails with EventTimeoutError; default none. */
  timeoutSeconds?: number;
  /** Keep this queue's completed and cancelled events in the history (an event class's own setting wins). */
  keepCompleted?: boolean | RetentionOptions;
};

/** What one `runWorker` call did. */
export interface RunWorkerResult {
  queueName: string;
  /** Events that succeeded. */
  processed: number;
  /** Events moved to the failed store (attempts used up, unknown event, corrupt payload). */
  failed: number;
  /** Events that failed an attempt and are due again later. */
  retried: number;
  /** Events cancelled before or while they ran (see WorkerService.cancel): removed, not retried. */
  cancelled: number;
  /**
   * Events that snoozed (execute() returned this.snooze(seconds)): due again later, their attempt not
   * counted. Present once an event of the run snoozed.
   */
  snoozed?: number;
}
