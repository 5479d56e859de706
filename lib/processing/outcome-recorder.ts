import { LeaseLostError } from '../errors/worker.error.js';
import { describeError } from '../errors/describe-error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { RunWorkerResult } from '../interfaces/worker-options.interface.js';
import type { FailEntry, RetryEntry } from '../interfaces/worker-repository.interface.js';
import type { WorkerLifecycle } from '../lifecycle/worker-lifecycle.js';
import { processingMessages as messages } from '../worker.messages.js';
import { type BatchQueueRepository, jobKey } from './batch-repository.adapter.js';
import type { AnnouncedJob, JobOutcome } from './job-attempt.js';

type Outcome<K extends JobOutcome['kind']> = Extract<JobOutcome, { kind: K }>;

/**
 * Writes what became of a run's jobs, announces it on the lifecycle and counts it into the run's
 * result. A batch's outcomes are written together once it has run (its rows stay leased until then,
 * so no claim can take them); a cancelled job's removal at once.
 */
export class OutcomeRecorder {
  constructor(
    private readonly repository: BatchQueueRepository,
    private readonly queueName: string,
    private readonly logger: ILoggerService,
    private readonly lifecycle: WorkerLifecycle | undefined,
    private readonly result: RunWorkerResult,
  ) {}

  /** Records a batch's outcomes: completions, then retries, then failed moves. */
  async recordBatch(outcomes: readonly JobOutcome[]): Promise<void> {
    const succeeded: Outcome<'succeeded'>[] = [];
    const retrying: Outcome<'retry'>[] = [];
    const failing: Outcome<'failed'>[] = [];
    for (const outcome of outcomes) {
      if (outcome.kind === 'succeeded') succeeded.push(outcome);
      else if (outcome.kind === 'retry') retrying.push(outcome);
      else if (outcome.kind === 'failed') failing.push(outcome);
    }
    await this.completeSucceeded(succeeded);
    await this.recordFailures(retrying, 'retrying', 'retried', (attempts) =>
      this.repository.retryWorkers(attempts.map(({ job, retry }): RetryEntry => ({ model: job, retry }))),
    );
    await this.recordFailures(failing, 'failed', 'moved', (attempts) =>
      this.repository.failWorkers(attempts.map(({ job, failed }): FailEntry => ({ model: job, failed }))),
    );
  }

  /** Removes a job cancelled before or while it ran, whatever its attempt did after the abort. */
  async recordCancelled({ job, announced, durationMs }: Outcome<'cancelled'>): Promise<void> {
    try {
      await this.repository.completeWorker(job);
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
    if (!this.lifecycle?.hasListeners) return;
    for (const { announced, durationMs } of recorded)
      await this.lifecycle.emit({ name: 'completed', ...announced, durationMs });
  }

  /**
   * Records failed attempts through `record` (one transaction for all of them where the repository
   * can), then counts and announces each. If recording fails, the rows stay leased and run again when
   * the lease expires.
   */
  private async recordFailures<A extends Outcome<'retry' | 'failed'>, O extends string>(
    attempts: A[],
    name: 'retrying' | 'failed',
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
    for (const { job, announced, durationMs, error } of attempts) {
      const { eventName, attributes } = announced;
      const what = outcomes.get(jobKey(job, attributes.id));
      if (what === done) {
        if (name === 'retrying') this.result.retried++;
        else this.result.failed++;
        await this.lifecycle?.emit({ name, ...announced, durationMs, error });
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

  private async announceCancelled(announced: AnnouncedJob, durationMs: number): Promise<void> {
    this.result.cancelled++;
    this.logger.log(messages.cancelled(announced.eventName, announced.attributes.id));
    await this.lifecycle?.emit({ name: 'cancelled', ...announced, durationMs });
  }
}
