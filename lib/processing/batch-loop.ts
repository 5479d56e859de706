import { EventCancelledError } from '../errors/worker.error.js';
import { describeError } from '../errors/describe-error.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type { RunWorkerResult } from '../interfaces/worker-options.interface.js';
import { processingMessages as messages } from '../worker.messages.js';
import { ClaimedRun } from './claimed-run.js';
import { type Heartbeat, startHeartbeat } from './heartbeat.js';
import { type AttemptSettings, attemptJob, type JobOutcome } from './job-attempt.js';
import type { OutcomeRecorder } from './outcome-recorder.js';
import { logQueuedItems } from './queued-items.js';
import { type PoolRun, startPool } from './run-pool.js';
import type { WakeUps } from './wake-ups.js';

/** What one runWorker() call runs with; none of it changes during the run. */
export interface RunSettings extends Omit<AttemptSettings, 'runs'> {
  workerId: string;
  leaseMs: number;
  heartbeatMs: number;
  concurrency: number;
  batchSize: number;
  recorder: OutcomeRecorder;
  result: RunWorkerResult;
}

/** Where a run is: the start of its current pass (jobs due after it wait for the next) and the last batch's record. */
interface RunState {
  dueBy: Date;
  readonly attempt: AttemptSettings;
  recording?: Promise<void>;
}

/** A batch whose pool may still start jobs: shutdown gives back the ones it has not started. */
interface UnstartedJobs {
  take(): IWorkerModel[];
  settings: RunSettings;
}

/**
 * The passes and batches of every run of this process: claims the due jobs of a queue batch by batch,
 * runs them through a pool with a heartbeat, and hands each batch's outcomes to the run's recorder.
 */
export class BatchLoop {
  private stopped = false;
  /** Claims on their way to the database: shutdown waits for them, then gives back what they took. */
  private readonly claims = new Set<Promise<IWorkerModel[]>>();
  /** The batches whose pools may still start jobs: shutdown() gives their unstarted jobs back at once. */
  private readonly unstartedBatches = new Set<UnstartedJobs>();
  private readonly heartbeats = new Set<Heartbeat>();
  /** Every claimed job of this process until its outcome is recorded, by id: cancel() aborts through it. */
  private readonly runs = new Map<string, ClaimedRun>();

  constructor(private readonly wakeUps: WakeUps) {}

  get stopping(): boolean {
    return this.stopped;
  }

  /** Events of this process whose execute() runs now (its worker-process row shows the count). */
  get runningCount(): number {
    let running = 0;
    for (const run of this.runs.values()) if (run.running) running++;
    return running;
  }

  /** Aborts the run of a cancelled job with EventCancelledError, if it is a claimed job of this process. */
  abortCancelled(id: string, eventName?: string): void {
    this.runs.get(id)?.abort(new EventCancelledError(id, eventName));
  }

  /**
   * Stops claiming and starting jobs; settles once the claims in flight have returned. Not async: the
   * caller's continuation must come right after the claims', before their pools hand out any job.
   */
  stop(): Promise<unknown> {
    this.stopped = true;
    // A claim in flight takes rows that must be given back before the database closes. Each run that
    // claimed registers its batch as soon as its claim returns, ahead of this continuation.
    return Promise.allSettled([...this.claims]);
  }

  /** Whatever still runs keeps only the lease it has: renewing it would outlive the DataSource. */
  stopHeartbeats(): void {
    for (const heartbeat of this.heartbeats) heartbeat.stop();
    this.heartbeats.clear();
  }

  /** Gives back the jobs of running batches that never started, so they do not wait for the batch to end. */
  async releaseUnstarted(): Promise<void> {
    for (const batch of [...this.unstartedBatches]) {
      this.unstartedBatches.delete(batch);
      const unstarted = batch.take();
      if (unstarted.length === 0) continue;
      try {
        await batch.settings.repository.releaseWorkers(unstarted);
      } catch (error) {
        batch.settings.logger.warn(messages.notGivenBack(unstarted.length, describeError(error)));
      }
    }
  }

  /**
   * Processes the due jobs of the run's queue: with `runOnce` one pass over what is due at the start,
   * otherwise passes until nothing is due.
   */
  async drain(settings: RunSettings): Promise<void> {
    const { options, repository, result } = settings;
    const state: RunState = { dueBy: new Date(0), attempt: { ...settings, runs: this.runs } };
    try {
      for (let firstPass = true; ; firstPass = false) {
        // A later pass reaches at least 1 ms past the previous one, where its zero-delay retries fall due.
        // Passes start on the database's clock (see currentTime), like every due time they compare with.
        const now = await repository.currentTime();
        state.dueBy = new Date(firstPass ? now : Math.max(now, state.dueBy.getTime() + 1));
        const retriedBefore = result.retried;
        await this.runPass(settings, state);
        if (options.runOnce || this.stopped) break;
        // The pass took everything due when it began. Another pass only for what can be due by now:
        // jobs it retried (zero-delay retries), or rows whose commit woke the queue meanwhile; a
        // wake-up starts it without waiting for the last outcomes to be recorded. Anything else that
        // falls due is the next poll's.
        if (await this.wakeUps.recordedOrWoken(options.queueName, state.recording)) continue;
        if (result.retried === retriedBefore) break;
      }
    } finally {
      await state.recording;
    }
  }

  /**
   * Claims and runs batches of the jobs due at `state.dueBy` until a claim comes back empty or short
   * of the batch size. A batch's outcomes are recorded while the next batch is claimed
   * (`state.recording`): its rows stay leased until then, so no claim can take them.
   */
  private async runPass(settings: RunSettings, state: RunState): Promise<void> {
    const { options, repository, batchSize, workerId, leaseMs } = settings;
    const { queueName } = options;
    let firstOfPass = true;
    while (!this.stopped) {
      const woken = this.wakeUps.take(queueName);
      // Rows committed since the pass began are what woke the queue: take them in this pass.
      if (woken && !options.runOnce) {
        state.dueBy = new Date(Math.max(await repository.currentTime(), state.dueBy.getTime()));
        // Shutdown may have begun meanwhile, and it waits only for claims already on their way.
        if (this.stopped) break;
      }
      const claim = repository.claimWorkers({
        queueName,
        limit: batchSize,
        workerId,
        leaseMs,
        dueBy: state.dueBy,
        expectDue: woken,
      });
      // Shutdown waits for a claim in flight, whatever its grace, to give back what it took.
      this.claims.add(claim);
      let jobs: IWorkerModel[];
      try {
        jobs = await claim;
      } finally {
        this.claims.delete(claim);
      }
      if (jobs.length === 0) break;
      // A batch short of the limit took everything due at `dueBy`: the pass ends with it (what became
      // due since is for the next pass, or wakes this one).
      const tookAllDue = jobs.length < batchSize;
      await this.runBatch(settings, state, jobs, firstOfPass);
      firstOfPass = false;
      if (tookAllDue && !this.wakeUps.has(queueName)) break;
    }
  }

  /** Runs one claimed batch and hands its outcomes to the recorder (`state.recording`). */
  private async runBatch(
    settings: RunSettings,
    state: RunState,
    jobs: IWorkerModel[],
    firstOfPass: boolean,
  ): Promise<void> {
    const { repository, logger, recorder } = settings;
    const runOf = new Map<string, ClaimedRun>();
    for (const job of jobs) {
      // Registered at once, so cancel() and the heartbeat can reach a job before and while it runs.
      const id = (job as { id?: string }).id;
      if (id === undefined) continue;
      const run = new ClaimedRun();
      this.runs.set(id, run);
      runOf.set(id, run);
    }
    const heartbeat = startHeartbeat(jobs, runOf, {
      repository,
      queueName: settings.options.queueName,
      leaseMs: settings.leaseMs,
      intervalMs: settings.heartbeatMs,
      logger,
      onCancelled: (id) => this.abortCancelled(id),
    });
    this.heartbeats.add(heartbeat);
    const stopHeartbeat = (): void => (heartbeat.stop(), void this.heartbeats.delete(heartbeat));
    let handedOver = false;
    // From the claim on, shutdown can give back the jobs this batch has not started: all of them
    // until the pool exists, then those the pool has not started.
    let pool: PoolRun<IWorkerModel> | undefined;
    let givenBack = false;
    const unstarted: UnstartedJobs = {
      settings,
      take: (): IWorkerModel[] => (pool ? pool.takeUnstarted() : givenBack ? [] : ((givenBack = true), jobs)),
    };
    this.unstartedBatches.add(unstarted);
    try {
      // Once per pass that found work (idle polls cost a single query), before its first event
      // starts, as larascript-events logs it. Only a full batch asks what else is due: one count per pass.
      if (firstOfPass && !this.stopped) {
        const countBy = jobs.length < settings.batchSize ? undefined : state.dueBy;
        await logQueuedItems(logger, repository, settings.options.queueName, jobs.length, countBy);
      }
      const outcomes: JobOutcome[] = [];
      pool = startPool(
        givenBack ? [] : jobs,
        settings.concurrency,
        () => !this.stopped,
        async (job) => {
          try {
            const outcome = await attemptJob(job, state.dueBy, state.attempt);
            if (outcome.kind === 'cancelled') await recorder.recordCancelled(outcome);
            else outcomes.push(outcome);
          } catch (error) {
            // Logged instead of ending the pass for the other jobs.
            logger.error(messages.unexpected(settings.options.queueName, describeError(error)));
          }
        },
      );
      const notStarted = await pool.done;
      this.unstartedBatches.delete(unstarted);
      if (notStarted.length > 0) await repository.releaseWorkers(notStarted);
      await state.recording;
      // The heartbeat keeps the leases until the outcomes are recorded.
      state.recording = recorder.recordBatch(outcomes).finally(stopHeartbeat);
      handedOver = true;
    } finally {
      this.unstartedBatches.delete(unstarted);
      if (!handedOver) stopHeartbeat();
      for (const [id, run] of runOf) {
        // Only this batch's: the same row may have been claimed again meanwhile (its lease expired).
        if (this.runs.get(id) === run) this.runs.delete(id);
      }
    }
  }
}
