import type { IWorkerAttributes } from './worker-attributes.interface.js';

/** A row of the failed store, as FailedWorkerService returns it. */
export interface FailedWorkerRecord extends IWorkerAttributes {
  id: string;
  failedAt: Date;
  /** The stored error text (message and stack). */
  error: string;
}

/** What to list: filters and the page (1-based). */
export interface FailedWorkerQuery {
  queueName?: string;
  eventName?: string;
  /** Default 1. */
  page?: number;
  /** Rows per page, 1–500. Default 20. */
  pageSize?: number;
}

export interface FailedWorkerPage {
  items: FailedWorkerRecord[];
  /** All rows matching the filters. */
  total: number;
  page: number;
  pageSize: number;
}

/** Statistics of one queue at one instant (see WorkerService.getQueueStatistics). */
export interface QueueStatistics {
  queueName: string;
  /** Rows in the pending table: due, delayed and running. */
  pending: number;
  /** Rows that may be claimed now (including rows whose lease expired). */
  due: number;
  /** Rows leased to a worker whose lease still holds. */
  running: number;
  /** Rows waiting for a later time (a retry delay), not leased. */
  delayed: number;
  /** Rows in the failed store. */
  failed: number;
  /** How long the oldest due row has been due (ms), or null when nothing is due. */
  oldestDueAgeMs: number | null;
  /** The queue is paused for every process (WorkerFlowService.pauseQueue): its due rows wait. */
  paused: boolean;
}
