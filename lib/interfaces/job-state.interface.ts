/** A JSON value as stored for results and progress. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/**
 * Where a job is: 'delayed' (due later), 'waiting' (due, not leased), 'running' (leased, lease
 * live), 'completed' and 'cancelled' (kept by keepCompleted), 'failed' (in the failed store).
 */
export type JobState = 'delayed' | 'waiting' | 'running' | 'completed' | 'failed' | 'cancelled';

export const JOB_STATES: readonly JobState[] = ['delayed', 'waiting', 'running', 'completed', 'failed', 'cancelled'];

/** What getJob() and findJobs() say of one job. Instants are on the database's clock. */
export interface JobRecord<TPayload = unknown, TResult = JsonValue> {
  /** The id dispatch returned; the job keeps it in the history and the failed store. */
  id: string;
  queueName: string;
  eventName: string;
  state: JobState;
  /** The parsed payload; the raw text when it no longer parses. */
  payload: TPayload;
  /** Attempts started so far. */
  attempts: number;
  /** Maximum total attempts in force. */
  retries: number;
  priority: number;
  uniqueKey: string | null;
  /** The last value reported with reportProgress(), or null. */
  progress: JsonValue | null;
  /** What execute() returned (completed jobs), or null. */
  result: TResult | null;
  /** The last error (retrying, failed), why the result was not kept, or why it was cancelled. */
  error: string | null;
  createdAt: Date;
  /** When it is (or was last) due. */
  dueAt: Date;
  /** When its current or last attempt started. */
  startedAt: Date | null;
  finishedAt: Date | null;
  /** How long its last attempt ran: completed, cancelled after it started, and failed jobs. */
  durationMs: number | null;
  /**
   * The worker process (WorkerService.workerId) running it, or that ran its last attempt of a finished
   * (completed, cancelled, failed) job; null while it waits (a retry releases the row).
   */
  workerId: string | null;
}

/** A top-level payload field compared for equality by findJobs(). */
export type PayloadFilterValue = string | number | boolean | null;

/** What findJobs() lists: every filter given must hold. */
export interface FindJobsQuery {
  queueName?: string;
  eventName?: string;
  /** One state or several; default: all. */
  state?: JobState | JobState[];
  uniqueKey?: string;
  /** Jobs dispatched at or after this instant. */
  createdFrom?: Date;
  /** Jobs dispatched before this instant. */
  createdTo?: Date;
  /** Top-level payload fields that must equal these values (names: letters, digits, _ and -). */
  payload?: Record<string, PayloadFilterValue>;
  /** 1-based; default 1. */
  page?: number;
  /** Jobs per page, 1–500; default 20. */
  pageSize?: number;
}

/** One page of findJobs(), newest first (by id: dispatch order). */
export interface JobPage {
  items: JobRecord[];
  /** All jobs matching the filters. */
  total: number;
  page: number;
  pageSize: number;
}

/** What a worker process says of itself (its row in the processes table). */
export interface WorkerProcessDescription {
  /** WorkerService.workerId. */
  id: string;
  host: string;
  pid: number;
  /** The queues it polls. */
  queues: string[];
  /** Events it may run at once, over all its queues. */
  concurrency: number;
  /** Events running at its last heartbeat. */
  running: number;
}

/** A live worker process, as listWorkers() returns it. */
export interface WorkerProcessInfo extends WorkerProcessDescription {
  startedAt: Date;
  lastHeartbeatAt: Date;
}

/** Which per-minute counts getThroughput() returns. */
export interface ThroughputQuery {
  queueName?: string;
  eventName?: string;
  /** From this minute on (default: an hour ago). */
  from?: Date;
  /** Before this instant (default: now). */
  to?: Date;
}

/** How many events of a queue and event name ended each way (in a minute, or a batch). */
export interface OutcomeCounts {
  queueName: string;
  eventName: string;
  completed: number;
  failed: number;
  retried: number;
  cancelled: number;
  snoozed: number;
}

/** Outcomes of one minute, queue and event name. */
export interface ThroughputPoint extends OutcomeCounts {
  /** Start of the minute. */
  minute: Date;
  /** Sum of the durations of the attempts counted (ms). */
  totalDurationMs: number;
}

/**
 * Keeping finished events (completed and cancelled) in the history, and pruning it: rows older than
 * maxAgeSeconds and beyond the newest maxCount of a queue (or event class) are deleted in the
 * background. `{}` keeps them until deleted by hand.
 */
export interface RetentionOptions {
  maxAgeSeconds?: number;
  maxCount?: number;
}
