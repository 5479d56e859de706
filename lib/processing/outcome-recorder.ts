import { EventCancelledError, LeaseLostError } from '../errors/worker.error.js';
import { describeError } from '../errors/describe-error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { RunWorkerResult } from '../interfaces/worker-options.interface.js';
import type {
  FailEntry,
  HistoryEntry,
  HistoryOutcome,
  HistoryRecord,
  RetryEntry,
  ThroughputCount,
} from '../interfaces/worker-repository.interface.js';
import type { WorkerLifecycle } from '../lifecycle/worker-lifecycle.js';
import { outcomeMessages, processingMessages as messages } from '../worker.messages.js';
import { type BatchQueueRepository, jobKey } from './batch-repository.adapter.js';
import type { AnnouncedJob, JobOutcome } from './job-attempt.js';

type Outcome<K extends JobOutcome['kind']> = Extract<JobOutcome, { kind: K }>;
type Counted = Exclude<keyof ThroughputCount, 'queueName' | 'eventName'>;

/** Repositories already told that they keep no history: logged once each, not once per batch. */
const warnedWithoutHistory = new WeakSet<object>();

/**
 * Writes what became of a run's jobs, announces it on the lifecycle and counts it into the run's
 * result and the per-minute throughput. A batch's outcomes are written together once it has run (its
 * rows stay leased until then, so no claim can take them); a cancelled job's removal at once.
 */
export class OutcomeRecorder {
  /** What was recorded since the last throughput write, per event name: written once per batch. */
  private tally = new Map<string, ThroughputCount>();

  constructor(
    private readonly repository: BatchQueueRepository,
    private readonly queueName: string,
    private readonly logger: ILoggerService,
    private readonly lifecycle: WorkerLifecycle | undefined,
    private readonly result: RunWorkerResult,
  ) {}

  /**
   * Records a batch's outcomes: completions (deleted, or moved to the history where kept), then
   * retries and snoozes (one transaction), then failed moves; then the batch's throughput, in one
   * upsert.
   */
  async recordBatch(outcomes: readonly JobOutcome[]): Promise<void> {
    const deleted: Outcome<'succeeded'>[] = [];
    const kept: Outcome<'succeeded'>[] = [];
    const retrying: Outcome<'retry' | 'snoozed'>[] = [];
    const failing: Outcome<'failed'>[] = [];
    for (const outcome of outcomes) {
      if (outcome.kind === 'succeeded') (outcome.keep ? kept : deleted).push(outcome);
      else if (outcome.kind === 'retry' || outcome.kind === 'snoozed') retrying.push(outcome);
      else if (outcome.kind === 'failed') failing.push(outcome);
    }
    if (kept.length > 0 && !this.repository.completeWorkersToHistory) {
      // A repository without history only deletes: the events completed all the same.
      if (!warnedWithoutHistory.has(this.repository)) {
        warnedWithoutHistory.add(this.repository);
        this.logger.warn(outcomeMessages.historyNeedsBuiltInRepository);
      }
      deleted.push(...kept.splice(0));
    }
    await this.completeSucceeded(deleted);
    await this.completeToHistory(kept);
    await this.recordFailures(retrying, 'retried', (attempts) =>
      this.repository.retryWorkers(
        attempts.map(({ job, retry, ...attempt }): RetryEntry => ({
          model: job,
          retry,
          history: ifCancelled(attempt),
        })),
      ),
    );
    await this.recordFailures(failing, 'moved', (attempts) =>
      this.repository.failWorkers(
        attempts.map(({ job, failed, durationMs, progress, ...attempt }): FailEntry => ({
          model: job,
          failed,
          durationMs,
          progress,
          history: ifCancelled({ ...attempt, durationMs, progress }),
        })),
      ),
    );
    await this.writeThroughput();
  }

  /**
   * Removes a job cancelled before or while it ran, whatever its attempt did after the abort; kept
   * in the history as cancelled where its queue or class keeps completed events.
   */
  async recordCancelled(cancelled: Outcome<'cancelled'>): Promise<void> {
    const { job, announced, durationMs } = cancelled;
    const toHistory = cancelled.keep ? this.repository.completeWorkersToHistory?.bind(this.repository) : undefined;
    try {
      if (toHistory) {
        const entry: HistoryEntry = { model: job, ...historyRecord(cancelled, 'cancelled', null, cancelled.reason) };
        const what = (await toHistory([entry])).get(jobKey(job, announced.attributes.id));
        if (what === 'lease-lost') throw new LeaseLostError(announced.attributes.id ?? '(unsaved)');
      } else {
        await this.repository.completeWorker(job);
      }
    } catch (error) {
      if (error instanceof LeaseLostError) this.logger.warn(messages.leaseLost(error.message, announced.eventName));
      else this.logger.error(messages.notRecorded(announced.eventName, announced.attributes.id, describeError(error)));
      return;
    }
    await this.announceCancelled(announced, durationMs);
  }

  /**
   * Deletes the rows of the batch's successful jobs in one statement per lease (fenced like every
   * write of a worker). If that fails, the rows stay leased and run again when the lease expires.
   */
  private async completeSucceeded(succeeded: Outcome<'succeeded'>[]): Promise<void> {
    if (succeeded.length === 0) return;
    const jobs = succeeded.map(({ job }) => job);
    let lost: Set<string>;
    try {
      lost = new Set(await this.repository.completeWorkers(jobs));
    } catch (error) {
      this.logger.error(messages.finishedNotRecorded(jobs.length, this.queueName, describeError(error)));
      return;
    }
    for (const id of lost) this.logger.warn(messages.completedLeaseLost(new LeaseLostError(id).message));
    const recorded =
      lost.size === 0 ? succeeded : succeeded.filter(({ announced }) => !lost.has(announced.attributes.id ?? ''));
    this.result.processed += recorded.length;
    for (const { announced, durationMs } of recorded) this.count(announced, 'completed', durationMs);
    if (!this.lifecycle?.hasListeners) return;
    for (const { announced, durationMs } of recorded)
      await this.lifecycle.emit({ name: 'completed', ...announced, durationMs });
  }

  /**
   * Moves the rows of the batch's kept successes to the history, in one transaction. A row found
   * cancelled meanwhile is kept as cancelled; one whose lease was lost is left to its new holder.
   */
  private async completeToHistory(kept: Outcome<'succeeded'>[]): Promise<void> {
    const toHistory = this.repository.completeWorkersToHistory;
    if (kept.length === 0 || !toHistory) return;
    let outcomes: Map<string, HistoryOutcome>;
    try {
      outcomes = await toHistory.call(
        this.repository,
        // Field by field, not spread from historyRecord(): spread costs microseconds a row (V8).
        kept.map((outcome): HistoryEntry => ({
          model: outcome.job,
          state: 'completed',
          result: outcome.stored.result,
          error: outcome.stored.error,
          durationMs: outcome.durationMs,
          progress: outcome.progress,
        })),
      );
    } catch (error) {
      this.logger.error(messages.finishedNotRecorded(kept.length, this.queueName, describeError(error)));
      return;
    }
    for (const { job, announced, durationMs } of kept) {
      const what = outcomes.get(jobKey(job, announced.attributes.id));
      if (what === 'completed') {
        this.result.processed++;
        this.count(announced, 'completed', durationMs);
        // As completeSucceeded(): no event object (a spread of the job's fields) without listeners.
        if (this.lifecycle?.hasListeners) await this.lifecycle.emit({ name: 'completed', ...announced, durationMs });
      } else if (what === 'cancelled') {
        await this.announceCancelled(announced, durationMs);
      } else {
        this.logger.warn(messages.completedLeaseLost(new LeaseLostError(announced.attributes.id ?? '').message));
      }
    }
  }

  /**
   * Records failed attempts (and snoozes) through `record` (one transaction for all of them where
   * the repository can), then counts and announces each. If recording fails, the rows stay leased
   * and run again when the lease expires.
   */
  private async recordFailures<A extends Outcome<'retry' | 'snoozed' | 'failed'>, O extends string>(
    attempts: A[],
    done: O,
    record: (attempts: A[]) => Promise<Map<string, O | 'cancelled' | 'lease-lost'>>,
  ): Promise<void> {
    if (attempts.length === 0) return;
    let outcomes: Map<string, O | 'cancelled' | 'lease-lost'>;
    try {
      outcomes = await record(attempts);
    } catch (error) {
      this.logger.error(messages.failuresNotRecorded(attempts.length, this.queueName, describeError(error)));
      return;
    }
    for (const attempt of attempts) {
      const { job, announced, durationMs } = attempt;
      const { eventName, attributes } = announced;
      const what = outcomes.get(jobKey(job, attributes.id));
      if (what === done) {
        await this.announceRecorded(attempt);
      } else if (what === 'cancelled') {
        // Cancelled in another process before this worker's heartbeat told it; the repository removed the row.
        await this.announceCancelled(announced, durationMs);
      } else if (what === 'lease-lost') {
        this.logger.warn(messages.leaseLost(new LeaseLostError(attributes.id ?? '(unsaved)').message, eventName));
      } else if (!this.repository.explainsMissingOutcomes) {
        this.logger.error(messages.noOutcome(eventName, attributes.id));
      }
    }
  }

  /** Counts and announces a recorded retry, snooze or failed move. */
  private async announceRecorded(attempt: Outcome<'retry' | 'snoozed' | 'failed'>): Promise<void> {
    const { announced, durationMs } = attempt;
    if (attempt.kind === 'snoozed') {
      this.result.snoozed = (this.result.snoozed ?? 0) + 1;
      this.count(announced, 'snoozed', durationMs);
      await this.lifecycle?.emit({ name: 'snoozed', ...announced, durationMs, dueAt: attempt.retry.availableAt });
    } else if (attempt.kind === 'retry') {
      this.result.retried++;
      this.count(announced, 'retried', durationMs);
      await this.lifecycle?.emit({ name: 'retrying', ...announced, durationMs, error: attempt.error });
    } else {
      this.result.failed++;
      this.count(announced, 'failed', durationMs);
      const permanent = attempt.permanent ? { permanent: true } : {};
      await this.lifecycle?.emit({ name: 'failed', ...announced, durationMs, error: attempt.error, ...permanent });
    }
  }

  private async announceCancelled(announced: AnnouncedJob, durationMs: number): Promise<void> {
    this.result.cancelled++;
    this.count(announced, 'cancelled', durationMs);
    this.logger.log(messages.cancelled(announced.eventName, announced.attributes.id));
    await this.lifecycle?.emit({ name: 'cancelled', ...announced, durationMs });
  }

  /** Adds one recorded outcome to the throughput tally of its event name. */
  private count(announced: AnnouncedJob, what: Exclude<Counted, 'durationMs'>, durationMs: number): void {
    if (!this.repository.recordThroughput) return;
    let counts = this.tally.get(announced.eventName);
    if (!counts) {
      counts = {
        queueName: this.queueName,
        eventName: announced.eventName,
        completed: 0,
        failed: 0,
        retried: 0,
        cancelled: 0,
        snoozed: 0,
        durationMs: 0,
      };
      this.tally.set(announced.eventName, counts);
    }
    counts[what]++;
    counts.durationMs += durationMs;
  }

  /** One upsert for what was recorded since the last one; a failure is logged, the outcomes stand. */
  private async writeThroughput(): Promise<void> {
    if (this.tally.size === 0 || !this.repository.recordThroughput) return;
    const counts = [...this.tally.values()];
    this.tally = new Map();
    try {
      await this.repository.recordThroughput(counts);
    } catch (error) {
      this.logger.error(outcomeMessages.throughputNotRecorded(this.queueName, describeError(error)));
    }
  }
}

/** The history record of an attempt that ended `state`, with its result (JSON text) or error. */
function historyRecord(
  attempt: { durationMs: number; progress?: string },
  state: HistoryRecord['state'],
  result: string | null,
  error: string | null,
): HistoryRecord {
  return { state, result, error, durationMs: attempt.durationMs, progress: attempt.progress };
}

/** For a retry or failed move of a kept event: how it is kept should its row turn out cancelled. */
function ifCancelled(attempt: {
  keep: boolean;
  announced: AnnouncedJob;
  durationMs: number;
  progress?: string;
}): HistoryRecord | undefined {
  if (!attempt.keep) return undefined;
  const { id, eventName } = { id: attempt.announced.attributes.id ?? '', eventName: attempt.announced.eventName };
  return historyRecord(attempt, 'cancelled', null, new EventCancelledError(id, eventName).message);
}
