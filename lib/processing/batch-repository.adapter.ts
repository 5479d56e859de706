import { CorruptPayloadError, EventCancelledError, LeaseLostError } from '../errors/worker.error.js';
import { describeError } from '../errors/describe-error.js';
import type { CancelledEvent } from '../interfaces/cancel.interface.js';
import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type {
  ClaimRequest,
  FailedMoveOutcome,
  FailEntry,
  HistoryEntry,
  HistoryOutcome,
  IWorkerQueueRepository,
  LeaseRenewal,
  QueueHealth,
  RetryEntry,
  RetryOutcome,
  ThroughputCount,
} from '../interfaces/worker-repository.interface.js';
import { processingMessages as messages } from '../worker.messages.js';

/** A queue repository with the batch methods and the database clock: what the outcome recorder writes through. */
export interface BatchQueueRepository extends IWorkerQueueRepository {
  completeWorkers(models: IWorkerModel[]): Promise<string[]>;
  retryWorkers(entries: RetryEntry[]): Promise<Map<string, RetryOutcome>>;
  failWorkers(entries: FailEntry[]): Promise<Map<string, FailedMoveOutcome>>;
  currentTime(): Promise<number>;
  /** Set when the repository logs every row it leaves out of a batch's outcomes (the recorder then does not). */
  readonly explainsMissingOutcomes?: true;
}

/** Keys for jobs whose rows have no id (larascript-events models need not carry one): unique per model. */
const keyless = new WeakMap<IWorkerModel, string>();
let keylessCount = 0;

/**
 * The key of a job's outcome in a batch method's answer: its row id, or for a row without one a key
 * of its own (a NUL-prefixed number no stored id has), so such rows do not share one outcome.
 */
export function jobKey(job: IWorkerModel, id: string | undefined): string {
  if (id !== undefined) return id;
  let key = keyless.get(job);
  if (key === undefined) keyless.set(job, (key = `\u0000${++keylessCount}`));
  return key;
}

/** The repository itself when it has every batch method and the clock, else the row-by-row adapter of it. */
export function withBatchMethods(
  repository: IWorkerQueueRepository,
  logger: () => ILoggerService,
): BatchQueueRepository {
  const { completeWorkers, retryWorkers, failWorkers, currentTime } = repository;
  if (completeWorkers && retryWorkers && failWorkers && currentTime) return repository as BatchQueueRepository;
  return new RowByRowRepository(repository, logger);
}

/**
 * Gives a repository without completeWorkers(), retryWorkers(), failWorkers() or currentTime() those
 * methods: its own where it has them, else one write per row, each failing on its own with the outcome
 * it would have had alone, and this process's clock (a larascript-events repository has no other).
 * Every other method is the repository's, looked up when called.
 */
class RowByRowRepository implements BatchQueueRepository {
  readonly explainsMissingOutcomes = true;
  readonly cancelWorker?: (
    target: { id: string } | { queueName: string; uniqueKey: string },
    now: number,
    keep?: (queueName: string, eventName: string) => boolean,
  ) => Promise<CancelledEvent | undefined>;
  readonly getQueueStatistics?: (queueNames?: string[]) => Promise<QueueStatistics[]>;
  readonly completeWorkersToHistory?: (entries: HistoryEntry[]) => Promise<Map<string, HistoryOutcome>>;
  readonly recordThroughput?: (counts: ThroughputCount[]) => Promise<void>;

  constructor(
    private readonly repository: IWorkerQueueRepository,
    private readonly logger: () => ILoggerService,
  ) {
    // Optional methods stay absent when the repository lacks them: the service says so when asked.
    if (repository.cancelWorker)
      this.cancelWorker = (target, now, keep) =>
        this.repository.cancelWorker?.(target, now, keep) ?? Promise.resolve(undefined);
    if (repository.getQueueStatistics)
      this.getQueueStatistics = (names) => this.repository.getQueueStatistics?.(names) ?? Promise.resolve([]);
    if (repository.completeWorkersToHistory)
      this.completeWorkersToHistory = (entries) =>
        this.repository.completeWorkersToHistory?.(entries) ?? Promise.resolve(new Map());
    if (repository.recordThroughput)
      this.recordThroughput = (counts) => this.repository.recordThroughput?.(counts) ?? Promise.resolve();
  }

  getWorkers(): Promise<IWorkerModel[]> {
    return this.repository.getWorkers();
  }

  claimWorkers(request: ClaimRequest): Promise<IWorkerModel[]> {
    return this.repository.claimWorkers(request);
  }

  countDueWorkers(queueName: string, dueBy: Date, limit?: number): Promise<number> {
    return this.repository.countDueWorkers(queueName, dueBy, limit);
  }

  completeWorker(model: IWorkerModel): Promise<void> {
    return this.repository.completeWorker(model);
  }

  retryWorker(model: IWorkerModel, retry: RetryEntry['retry']): Promise<void> {
    return this.repository.retryWorker(model, retry);
  }

  failWorker(model: IWorkerModel, failed: IWorkerModel): Promise<void> {
    return this.repository.failWorker(model, failed);
  }

  renewLeases(
    models: IWorkerModel[],
    leaseMs: number,
    progress?: ReadonlyMap<string, string>,
  ): Promise<LeaseRenewal | string[] | void> {
    return this.repository.renewLeases(models, leaseMs, progress);
  }

  releaseWorkers(models: IWorkerModel[]): Promise<void> {
    return this.repository.releaseWorkers(models);
  }

  getQueueHealth(queueNames?: string[]): Promise<QueueHealth[]> {
    return this.repository.getQueueHealth(queueNames);
  }

  currentTime(): Promise<number> {
    return this.repository.currentTime ? this.repository.currentTime() : Promise.resolve(Date.now());
  }

  /** One fenced delete per row; resolves to the ids whose lease was lost, and fails on any other error. */
  async completeWorkers(models: IWorkerModel[]): Promise<string[]> {
    if (this.repository.completeWorkers) return this.repository.completeWorkers(models);
    const lost: string[] = [];
    for (const model of models) {
      try {
        await this.repository.completeWorker(model);
      } catch (error) {
        if (!(error instanceof LeaseLostError)) throw error;
        lost.push(error.workerId);
      }
    }
    return lost;
  }

  async retryWorkers(entries: RetryEntry[]): Promise<Map<string, RetryOutcome>> {
    if (this.repository.retryWorkers)
      return this.explained(entries, await this.repository.retryWorkers(entries), 'retried');
    return this.oneByOne(entries, 'retried', (entry) => this.repository.retryWorker(entry.model, entry.retry));
  }

  async failWorkers(entries: FailEntry[]): Promise<Map<string, FailedMoveOutcome>> {
    if (this.repository.failWorkers)
      return this.explained(entries, await this.repository.failWorkers(entries), 'moved');
    return this.oneByOne(entries, 'moved', (entry) => this.repository.failWorker(entry.model, entry.failed));
  }

  /**
   * The repository's own batch answer, with every row it left out, or answered with no known outcome,
   * logged (as the recorder would).
   */
  private explained<O>(entries: { model: IWorkerModel }[], outcomes: Map<string, O>, done: O): Map<string, O> {
    for (const { model } of entries) {
      const data = attributesOf(model);
      const what = outcomes.get(jobKey(model, data?.id));
      if (what !== done && what !== 'cancelled' && what !== 'lease-lost') {
        this.logger().error(messages.noOutcome(data?.eventName ?? '', data?.id));
      }
    }
    return outcomes;
  }

  /** One write per row, each failing on its own; a row whose write failed otherwise is logged and left out. */
  private async oneByOne<E extends { model: IWorkerModel }, O extends string>(
    entries: E[],
    done: O,
    write: (entry: E) => Promise<void>,
  ): Promise<Map<string, O | 'cancelled' | 'lease-lost'>> {
    const outcomes = new Map<string, O | 'cancelled' | 'lease-lost'>();
    for (const entry of entries) {
      const data = attributesOf(entry.model);
      const key = jobKey(entry.model, data?.id);
      try {
        await write(entry);
        outcomes.set(key, done);
      } catch (error) {
        if (error instanceof EventCancelledError) outcomes.set(key, 'cancelled');
        else if (error instanceof LeaseLostError) outcomes.set(key, 'lease-lost');
        else this.logger().error(messages.notRecorded(data?.eventName ?? '', data?.id, describeError(error)));
      }
    }
    return outcomes;
  }
}

/** The row's id and event name, read before its write (a row that no longer reads has neither). */
function attributesOf(model: IWorkerModel): { id?: string; eventName: string } | undefined {
  try {
    return model.getWorkerData() ?? undefined;
  } catch (error) {
    return error instanceof CorruptPayloadError ? error.attributes : undefined;
  }
}
