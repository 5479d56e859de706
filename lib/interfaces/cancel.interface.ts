import type { IWorkerAttributes } from './worker-attributes.interface.js';

/** Which event `WorkerService.cancel()` cancels: a row id, or the unique key it was dispatched with. */
export type CancelTarget = string | { queueName: string; uniqueKey: string };

/** A cancelled event, as it was when cancelled. */
export interface CancelledEvent {
  id: string;
  queueName: string;
  eventName: string;
  /**
   * False: it was waiting, and its row is gone. True: a worker was running it; that worker's
   * AbortSignal is aborted (at once in this process, at its next heartbeat elsewhere) and the row is
   * removed when the attempt ends, whatever its outcome, instead of being retried.
   */
  wasRunning: boolean;
  /** The row's attributes; absent when its payload no longer parses. */
  attributes?: IWorkerAttributes;
}
