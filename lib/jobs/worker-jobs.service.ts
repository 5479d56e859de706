import type { DataSource } from 'typeorm';
import { rowIdOf } from '../common/worker-options.validation.js';
import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import { deserializePayload } from '../events/payload-serializer.js';
import type {
  FindJobsQuery,
  JobPage,
  JobRecord,
  JsonValue,
  ThroughputPoint,
  ThroughputQuery,
  WorkerProcessInfo,
} from '../interfaces/job-state.interface.js';
import { JobStore, type StoredJob } from '../storage/job-store.js';
import { jobQueryMessages } from '../worker.messages.js';
import { checkFindJobsQuery, checkThroughputQuery } from './job-query.validation.js';

/** What WorkerJobsService needs of the configuration. */
export interface WorkerJobsSettings {
  /** A process whose last heartbeat is older than this is not listed (ResolvedWorkerConfig.leaseSeconds). */
  leaseSeconds: number;
}

/**
 * What became of every event, for apps and operators: a job by id in any state (pending, kept in
 * the history, failed), listings with filters, the live worker processes and the per-minute
 * throughput. Read-only; bad input is refused with an InvalidWorkerOptionsError naming the field.
 */
export class WorkerJobsService {
  private readonly store: JobStore;
  private readonly leaseMs: number;

  constructor(dataSource: DataSource, settings: WorkerJobsSettings) {
    this.store = new JobStore(dataSource);
    this.leaseMs = settings.leaseSeconds * 1000;
  }

  /**
   * The job dispatch gave this id, wherever it is now, or undefined when there is none (never
   * dispatched, or deleted: completed without keepCompleted, pruned, removed from the failed store).
   */
  async getJob(id: string | number): Promise<JobRecord | undefined> {
    const stored = await this.store.get(rowIdOf(id, 'a job id'));
    return stored && toJobRecord(stored);
  }

  /**
   * The jobs matching every filter given, newest first (dispatch order), one page of them, with how
   * many match in all. A page beyond the last one (when some match) is refused, so a client paging
   * past the end learns it instead of reading an empty page as "no jobs".
   */
  async findJobs(query: FindJobsQuery = {}): Promise<JobPage> {
    const { filter, page, pageSize } = checkFindJobsQuery(query);
    const total = await this.store.count(filter);
    const offset = (page - 1) * pageSize;
    if (total > 0 && offset >= total) {
      throw new InvalidWorkerOptionsError(
        'page',
        jobQueryMessages.pageOutOfRange(page, Math.ceil(total / pageSize), total),
      );
    }
    const items = total === 0 ? [] : await this.store.page(filter, offset, pageSize);
    return { items: items.map(toJobRecord), total, page, pageSize };
  }

  /** The worker processes that heartbeat within a lease of the database's now, oldest first. */
  async listWorkers(): Promise<WorkerProcessInfo[]> {
    const rows = await this.store.liveWorkers(this.leaseMs);
    return rows.map((row) => ({
      id: row.id,
      host: row.host,
      pid: row.pid,
      queues: queuesOf(row.queues),
      concurrency: row.concurrency,
      running: row.running,
      startedAt: new Date(row.startedAt),
      lastHeartbeatAt: new Date(row.heartbeatAt),
    }));
  }

  /** Outcome counts per minute, queue and event name, ordered by minute; default: the last hour. */
  async getThroughput(query: ThroughputQuery = {}): Promise<ThroughputPoint[]> {
    const rows = await this.store.throughput(checkThroughputQuery(query));
    return rows.map((row) => ({
      minute: new Date(row.minute),
      queueName: row.queueName,
      eventName: row.eventName,
      completed: row.completed,
      failed: row.failed,
      retried: row.retried,
      cancelled: row.cancelled,
      snoozed: row.snoozed,
      totalDurationMs: row.durationMs,
    }));
  }
}

function toJobRecord(job: StoredJob): JobRecord {
  const date = (epochMs: number | null): Date | null => (epochMs === null ? null : new Date(epochMs));
  return {
    id: job.id,
    queueName: job.queueName,
    eventName: job.eventName,
    state: job.state,
    payload: payloadOf(job.payload),
    attempts: job.attempts,
    retries: job.retries,
    priority: job.priority,
    uniqueKey: job.uniqueKey,
    progress: jsonOf(job.progress),
    result: jsonOf(job.result),
    error: job.error,
    createdAt: new Date(job.createdAt),
    dueAt: new Date(job.dueAt),
    startedAt: date(job.startedAt),
    finishedAt: date(job.finishedAt),
    durationMs: job.durationMs,
    workerId: job.workerId,
  };
}

/** The parsed payload; its raw text when it no longer parses (as the failed store shows it). */
function payloadOf(text: string | null): unknown {
  try {
    return deserializePayload(text);
  } catch {
    return text;
  }
}

/** Progress and results are written as JSON; text that does not parse is shown as it is. */
function jsonOf(text: string | null): JsonValue | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return text;
  }
}

/** The queues column is a JSON array of names; anything else lists none. */
function queuesOf(text: string): string[] {
  try {
    const queues: unknown = JSON.parse(text);
    return Array.isArray(queues) ? queues.map(String) : [];
  } catch {
    return [];
  }
}
