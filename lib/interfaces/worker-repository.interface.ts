import type { ClaimFlowLimits, ClaimFlowReport } from './flow-control.interface.js';
import type { OutcomeCounts, WorkerProcessDescription } from './job-state.interface.js';
import type { CancelledEvent } from './cancel.interface.js';
import type { QueueStatistics } from './failed-workers.interface.js';
import type { IWorkerModel } from './worker-model.interface.js';

/** larascript-events' repository: reads the queued (pending) worker rows. */
export interface IWorkerRepository {
  getWorkers(): Promise<IWorkerModel[]>;
}

/** What one claim asks for. */
export interface ClaimRequest {
  queueName: string;
  limit: number;
  /** Identifies the claiming worker process; stored on the row while it holds the lease. */
  workerId: string;
  leaseMs: number;
  /** Only rows due at or before this instant are claimed (the start of the pass). */
  dueBy: Date;
  /** Rows are known to have just been committed to the queue (a wake-up): no need to check first. */
  expectDue?: boolean;
  /**
   * The queue's limits over every process (globalConcurrency, keyConcurrency, rate limits): the claim
   * then takes the queue's lock row, counts what runs and what started, and takes only what the limits
   * allow, keys in turn. Absent for a queue without limits.
   */
  flow?: ClaimFlowLimits;
  /** Filled by a claim with `flow`: when a rate limit frees budget again, and whether the queue is paused. */
  flowReport?: ClaimFlowReport;
}

/** What a heartbeat learnt about the rows it renewed. */
export interface LeaseRenewal {
  /** Rows cancelled while they run. */
  cancelled: string[];
  /** Rows whose lease this worker no longer holds: another worker took them, or they were deleted. */
  lost: string[];
}

export interface RetryRequest {
  error: string;
  /** When the row is due again. */
  availableAt: Date;
  /** Maximum total attempts in force for this row. */
  retries: number;
  /**
   * The event snoozed (execute() returned this.snooze(seconds)): the row is due again at
   * `availableAt` without the attempt counting (attempts - 1) and keeps its last error (`error` is
   * not written).
   */
  snoozed?: boolean;
}

/**
 * How a finished event is kept in the history (keepCompleted): its state as the worker saw it, its
 * result as JSON text, why the result was not kept (or why it was cancelled), how long it ran, and
 * the progress it reported last (JSON text; undefined keeps the row's).
 */
export interface HistoryRecord {
  state: 'completed' | 'cancelled';
  result: string | null;
  error: string | null;
  durationMs: number;
  progress?: string;
}

/** A finished event to move to the history with completeWorkersToHistory(). */
export interface HistoryEntry extends HistoryRecord {
  model: IWorkerModel;
}

/**
 * What became of a row moved to the history: kept as 'completed', or as 'cancelled' (cancelled
 * before or while it ran), or left alone because another worker holds it now ('lease-lost').
 */
export type HistoryOutcome = 'completed' | 'cancelled' | 'lease-lost';

/** A failed attempt to record with retryWorkers(): the claimed row and how it is retried. */
export interface RetryEntry {
  model: IWorkerModel;
  retry: RetryRequest;
  /** Where the row turns out cancelled: keep it in the history as this (its queue or class keeps them). */
  history?: HistoryRecord;
}

/** A failed attempt to record with failWorkers(): the claimed row and its copy for the failed store. */
export interface FailEntry {
  model: IWorkerModel;
  failed: IWorkerModel;
  /** How long the attempt ran (the failed copy's duration_ms). */
  durationMs?: number;
  /** The progress the attempt reported last, JSON text (else the row's). */
  progress?: string;
  /** Where the row turns out cancelled: keep it in the history as this. */
  history?: HistoryRecord;
}

/** One batch's recorded outcomes of one queue and event name, for the per-minute throughput. */
export interface ThroughputCount extends OutcomeCounts {
  /** Sum of the durations of the attempts counted (ms). */
  durationMs: number;
}

/**
 * What became of a failed attempt's row: recorded ('retried', or 'moved' to the failed store),
 * removed because it was cancelled while it ran ('cancelled'), or left alone because another worker
 * holds it now ('lease-lost').
 */
export type RetryOutcome = 'retried' | 'cancelled' | 'lease-lost';
export type FailedMoveOutcome = 'moved' | 'cancelled' | 'lease-lost';

/** Counts of one queue: `active` rows waiting or running, `failed` rows in the failed store. */
export interface QueueHealth {
  queueName: string;
  active: number;
  failed: number;
  total: number;
}

/**
 * A repository that can lease rows to one worker at a time. The built-in TypeORM repository
 * implements it; a repository with only larascript-events' `getWorkers()` is adapted (no leases: run one
 * worker process per queue with such a repository).
 */
export interface IWorkerQueueRepository extends IWorkerRepository {
  /** Atomically leases up to `limit` due rows of one queue, counting the attempt; oldest due first. */
  claimWorkers(request: ClaimRequest): Promise<IWorkerModel[]>;
  /** How many rows of the queue are due at `dueBy` and not leased (counting no further than `limit`). */
  countDueWorkers(queueName: string, dueBy: Date, limit?: number): Promise<number>;
  /** Deletes a row that succeeded. Throws LeaseLostError if the lease is no longer held. */
  completeWorker(model: IWorkerModel): Promise<void>;
  /**
   * Deletes the rows of events that succeeded, fenced by their lease tokens, in as few statements as
   * it can; resolves to the ids it could not delete because their leases were lost. Optional:
   * without it each row goes through completeWorker().
   */
  completeWorkers?(models: IWorkerModel[]): Promise<string[]>;
  /**
   * Moves finished rows to the history (keepCompleted), fenced by their lease tokens: copy and
   * delete in one transaction per batch; resolves to the outcome of every entry by row id. Optional:
   * without it kept rows are only deleted (history needs the built-in repository).
   */
  completeWorkersToHistory?(entries: HistoryEntry[]): Promise<Map<string, HistoryOutcome>>;
  /**
   * Adds a batch's outcome counts to the per-minute throughput (the minute of the database's now),
   * in one statement. Optional: without it nothing is counted.
   */
  recordThroughput?(counts: ThroughputCount[]): Promise<void>;
  /** Records a failed attempt and makes the row due again. */
  retryWorker(model: IWorkerModel, retry: RetryRequest): Promise<void>;
  /** Moves the row to the failed store: the insert and the delete happen together or not at all. */
  failWorker(model: IWorkerModel, failed: IWorkerModel): Promise<void>;
  /**
   * retryWorker() for the failed attempts of a batch, fenced by their lease tokens, in as few
   * statements as it can; resolves to the outcome of every entry by row id. Optional: without it
   * each row goes through retryWorker().
   */
  retryWorkers?(entries: RetryEntry[]): Promise<Map<string, RetryOutcome>>;
  /**
   * failWorker() for the exhausted attempts of a batch: every held row is deleted and its failed copy
   * inserted in one transaction, all or none; resolves to the outcome of every entry by row id.
   * Optional: without it each row goes through failWorker().
   */
  failWorkers?(entries: FailEntry[]): Promise<Map<string, FailedMoveOutcome>>;
  /**
   * Extends the leases this worker still holds on these claimed rows to `leaseMs` from now
   * (heartbeat); may resolve to the ids among them that were cancelled meanwhile (an array, or
   * `cancelled`), and the ids whose lease this worker no longer holds (`lost`): their events are
   * aborted with LeaseLostError at once. `progress` holds the JSON text of the progress the events
   * reported since the last renewal, by row id (only the last of each): written with the renewal,
   * in the same statement, for rows whose lease is still held. Optional to honour: a repository that
   * ignores it keeps working, and its jobs show no progress.
   */
  renewLeases(
    models: IWorkerModel[],
    leaseMs: number,
    progress?: ReadonlyMap<string, string>,
  ): Promise<LeaseRenewal | string[] | void>;
  /**
   * The database's time now (epoch ms), which pass starts and retry due times are computed from.
   * Optional: without it the process's clock is used.
   */
  currentTime?(): Promise<number>;
  /** Gives back claimed rows that were never started (shutdown), undoing their attempt count. */
  releaseWorkers(models: IWorkerModel[]): Promise<void>;
  /** Health per queue; every queue with rows when `queueNames` is omitted. */
  getQueueHealth(queueNames?: string[]): Promise<QueueHealth[]>;
  /**
   * Cancels a pending row (removed) or a running one (marked so its worker aborts it and removes it).
   * Resolves to undefined when no such row is pending. `keep` says whether a waiting row it removes
   * is kept in the history as cancelled (keepCompleted of its queue or event class), in the same
   * transaction. Optional for custom repositories.
   */
  cancelWorker?(
    target: { id: string } | { queueName: string; uniqueKey: string },
    now: number,
    keep?: (queueName: string, eventName: string) => boolean,
  ): Promise<CancelledEvent | undefined>;
  /**
   * Statistics per queue in one query; every queue with rows when `queueNames` is omitted. Optional
   * for custom repositories.
   */
  getQueueStatistics?(queueNames?: string[]): Promise<QueueStatistics[]>;
  /**
   * Writes this process's row of the worker-process table (nestjs_workers_processes), its heartbeat
   * on the database's clock: one UPDATE, or an insert when the row is not there (first registration,
   * or pruned while the process was paused). Optional: without it the process is not listed.
   */
  saveWorkerProcess?(process: WorkerProcessState): Promise<void>;
  /** Deletes this process's row (graceful stop). Optional, like saveWorkerProcess(). */
  removeWorkerProcess?(id: string): Promise<void>;
}

/** What a worker process says of itself at each heartbeat (see saveWorkerProcess). */
export interface WorkerProcessState extends WorkerProcessDescription {
  /** When it registered (epoch ms on the database's clock): kept when the row is inserted again. */
  startedAt: number;
}
