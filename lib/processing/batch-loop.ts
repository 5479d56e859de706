import { EventCancelledError } from '../errors/worker.error.js';
import { describeError } from '../errors/describe-error.js';
import type { ClaimFlowLimits, ClaimFlowReport } from '../interfaces/flow-control.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type { ClaimRequest } from '../interfaces/worker-repository.interface.js';
import type { RunWorkerResult } from '../interfaces/worker-options.interface.js';
import { flowGraceMessages, flowOptionsMessages, processingMessages as messages } from '../worker.messages.js';
import { ClaimedRun } from './claimed-run.js';
import { type Heartbeat, startHeartbeat } from './heartbeat.js';
import { HeldJobs, OutcomeStream } from './held-jobs.js';
import { type AttemptSettings, attemptJob, type JobOutcome } from './job-attempt.js';
import type { OutcomeRecorder } from './outcome-recorder.js';
import { logQueuedItems } from './queued-items.js';
import { type PoolRun, startPool } from './run-pool.js';
import type { WakeUps } from './wake-ups.js';

/** Claims of a rate-limited queue given back whole in a row before it is logged as a problem (once). */
const GIVEN_BACK_WARNING = 3;

/** What one runWorker() call runs with; none of it changes during the run. */
export interface RunSettings extends Omit<AttemptSettings, 'runs'> {
  workerId: string;
  leaseMs: number;
  heartbeatMs: number;
  concurrency: number;
  batchSize: number;
  recorder: OutcomeRecorder;
  result: RunWorkerResult;
  /** The queue's limits over every process: claims go through the limited claim (runFlowPass). */
  flow?: ClaimFlowLimits;
}

/** One claim of a limited run: when it was sent, and what its jobs hold. */
interface FlowClaim {
  sentAt: number;
  /** How long the claim waited in the database before its grant (ClaimFlowReport.waitedMs): not lateness. */
  waitedMs: number;
  held: HeldJobs;
  outcomes: OutcomeStream;
  /** Its size was all the run could take: "Queued items" then counts what else is due. */
  full: boolean;
  firstOfPass: boolean;
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
  /** What the limited runs wait on (a job let go, the rate budget): shutdown ends their waits. */
  private readonly flowWaits = new Set<HeldJobs>();
  /** Per limited queue, its claims given back whole in a row (none of their events started in the grace). */
  private readonly givenBackInRow = new Map<string, number>();
  /** Queues whose repeated give-backs were logged (once per process). */
  private readonly givenBackWarned = new Set<string>();

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
    for (const held of this.flowWaits) held.notify();
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
        // A limited queue's claims go their own way; a queue without limits takes the plain path.
        const paused = settings.flow
          ? await this.runFlowPass(settings, settings.flow, state)
          : void (await this.runPass(settings, state));
        if (options.runOnce || this.stopped || paused) break;
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
      const jobs = await this.tracked(claim);
      if (jobs.length === 0) break;
      // A batch short of the limit took everything due at `dueBy`: the pass ends with it (what became
      // due since is for the next pass, or wakes this one).
      const tookAllDue = jobs.length < batchSize;
      await this.runBatch(settings, state, jobs, firstOfPass);
      firstOfPass = false;
      if (tookAllDue && !this.wakeUps.has(queueName)) break;
    }
  }

  /**
   * A claim in flight, known to shutdown until it settles: stop() waits for it, whatever its grace, to
   * give back what it took. The caller awaits this very promise (no wrapper), so its continuation
   * still comes right after the claim's, ahead of stop()'s (see stop()).
   */
  private tracked(claim: Promise<IWorkerModel[]>): Promise<IWorkerModel[]> {
    this.claims.add(claim);
    const forget = (): void => void this.claims.delete(claim);
    claim.then(forget, forget);
    return claim;
  }

  /**
   * A run for each claimed job, registered at once, so cancel() and the heartbeat can reach a job
   * before and while it runs.
   */
  private registerRuns(jobs: IWorkerModel[]): Map<string, ClaimedRun> {
    const runOf = new Map<string, ClaimedRun>();
    for (const job of jobs) {
      const id = (job as { id?: string }).id;
      if (id === undefined) continue;
      const run = new ClaimedRun();
      this.runs.set(id, run);
      runOf.set(id, run);
    }
    return runOf;
  }

  /** Runs one claimed batch and hands its outcomes to the recorder (`state.recording`). */
  private async runBatch(
    settings: RunSettings,
    state: RunState,
    jobs: IWorkerModel[],
    firstOfPass: boolean,
  ): Promise<void> {
    const { repository, logger, recorder } = settings;
    const runOf = this.registerRuns(jobs);
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

  /**
   * A pass of a queue with limits (globalConcurrency, keyConcurrency, rate limits), whose claims count
   * what runs and starts over every process. The run holds at most `concurrency` jobs (claimed, outcome
   * not yet recorded) and claims no more than it can start at once, so no claimed row waits in a slot
   * unstarted; each outcome is recorded as soon as it is known (OutcomeStream), which frees its slot,
   * and the freed capacity is claimed at once, so one slow event never keeps the others' slots idle.
   * A claim held back by a rate limit is made again at the instant the limit frees budget
   * (flowReport.nextStartAt), not at the next poll. Resolves to true when the queue is paused.
   */
  private async runFlowPass(settings: RunSettings, flow: ClaimFlowLimits, state: RunState): Promise<boolean> {
    const { options, repository, workerId, leaseMs, concurrency, batchSize } = settings;
    const { queueName } = options;
    const held = new HeldJobs();
    const outcomes = new OutcomeStream(settings.recorder, settings.logger, queueName);
    this.flowWaits.add(held);
    let firstOfPass = true;
    let paused = false;
    try {
      for (let firstClaim = true; !this.stopped; firstClaim = false) {
        // On SQLite a claim and a give-back settle without leaving the microtask queue: a run whose
        // claims keep coming back (events given back unstarted) must still let timers and I/O run.
        if (!firstClaim) await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.stopped) break;
        const free = Math.min(concurrency - held.held, batchSize);
        if (free <= 0) {
          await held.change();
          continue;
        }
        const woken = this.wakeUps.take(queueName);
        // A pass may last long under a rate limit: it takes what fell due since it began (a runOnce
        // pass keeps to what was due at its start).
        if (!options.runOnce) {
          state.dueBy = new Date(Math.max(await repository.currentTime(), state.dueBy.getTime()));
          if (this.stopped) break;
        }
        const sentAt = performance.now();
        // The claim puts its report (paused, nextStartAt) on the request.
        const request: ClaimRequest = {
          queueName,
          limit: free,
          workerId,
          leaseMs,
          dueBy: state.dueBy,
          expectDue: woken,
          flow,
          flowReport: {},
        };
        const jobs = await this.tracked(repository.claimWorkers(request));
        const flowReport: ClaimFlowReport = request.flowReport ?? {};
        if (jobs.length > 0) {
          held.take(jobs.length);
          const claimed: FlowClaim = {
            sentAt,
            waitedMs: flowReport.waitedMs ?? 0,
            held,
            outcomes,
            full: jobs.length === free,
            firstOfPass,
          };
          void this.runFlowClaim(settings, state, jobs, claimed);
          firstOfPass = false;
        }
        if (flowReport.paused) {
          paused = true;
          break;
        }
        const nextStartAt = flowReport.nextStartAt;
        // Took all it asked for: claim the rest of the free capacity, if any.
        if (jobs.length === free && nextStartAt === undefined) continue;
        // Nothing due (or everything due is held by other processes): what falls due is the next poll's.
        if (held.held === 0 && nextStartAt === undefined) break;
        // Short of what it asked: claim again when a job of this run is let go (what the limits allow
        // then may have changed), when the rate limit frees budget, or when rows are committed.
        const waitMs = nextStartAt === undefined ? undefined : nextStartAt - (await repository.currentTime());
        if (await this.wakeUps.recordedOrWoken(queueName, held.change(waitMs))) held.notify();
      }
    } finally {
      // The running jobs finish and are recorded (shutdown gives back the unstarted ones).
      await held.drained();
      this.flowWaits.delete(held);
    }
    return paused;
  }

  /**
   * Runs one claim of a limited run: its jobs start at once (the claim took no more than the run can
   * start), each outcome is recorded as it comes. A rate-limited job that cannot start within the start
   * grace of its grant is given back unstarted: its granted start counts in the limiter's window only
   * that much past the grant, so a later start could exceed the rate. The grant is later than the
   * claim's send by at least the claim's wait in the database (waitedMs: for a lock row other claims
   * hold, SQLite's write lock), so lateness is the time since the send less that wait: never less than
   * the time since the grant, and a claim that queued behind others is not late for it. Never rejects.
   */
  private async runFlowClaim(
    settings: RunSettings,
    state: RunState,
    jobs: IWorkerModel[],
    claimed: FlowClaim,
  ): Promise<void> {
    const { repository, logger, options } = settings;
    const { queueName } = options;
    const flow = settings.flow!;
    const rateLimited = flow.rate !== undefined || flow.keyRate !== undefined;
    const runOf = this.registerRuns(jobs);
    const heartbeat = startHeartbeat(jobs, runOf, {
      repository,
      queueName,
      leaseMs: settings.leaseMs,
      intervalMs: settings.heartbeatMs,
      logger,
      onCancelled: (id) => this.abortCancelled(id),
    });
    this.heartbeats.add(heartbeat);
    let pool: PoolRun<IWorkerModel> | undefined;
    let started = 0;
    let lateBy = 0;
    const unstarted: UnstartedJobs = { settings, take: () => pool?.takeUnstarted() ?? [] };
    this.unstartedBatches.add(unstarted);
    const mayStart = (): boolean => {
      if (this.stopped) return false;
      if (!rateLimited) return true;
      lateBy = performance.now() - claimed.sentAt - claimed.waitedMs;
      return lateBy <= flow.startGraceMs;
    };
    try {
      pool = startPool(jobs, jobs.length, mayStart, async (job) => {
        started++;
        try {
          const outcome = await attemptJob(job, state.dueBy, state.attempt);
          if (outcome.kind === 'cancelled') await settings.recorder.recordCancelled(outcome);
          else await claimed.outcomes.record(outcome);
        } catch (error) {
          logger.error(messages.unexpected(queueName, describeError(error)));
        } finally {
          claimed.held.letGo(1);
        }
      });
      // Once the jobs have started: the count must not delay their start past the grace.
      if (claimed.firstOfPass && !this.stopped) {
        await logQueuedItems(logger, repository, queueName, jobs.length, claimed.full ? state.dueBy : undefined);
      }
      const notStarted = await pool.done;
      this.unstartedBatches.delete(unstarted);
      if (rateLimited && !this.stopped) this.noteGivenBack(settings, started === 0 && notStarted.length > 0, lateBy);
      if (notStarted.length > 0) {
        if (!this.stopped)
          logger.warn(flowOptionsMessages.notStartedInGrace(queueName, notStarted.length, lateBy, flow.startGraceMs));
        try {
          await repository.releaseWorkers(notStarted);
        } catch (error) {
          logger.warn(messages.notGivenBack(notStarted.length, describeError(error)));
        }
      }
    } catch (error) {
      logger.error(messages.unexpected(queueName, describeError(error)));
    } finally {
      this.unstartedBatches.delete(unstarted);
      heartbeat.stop();
      this.heartbeats.delete(heartbeat);
      for (const [id, run] of runOf) if (this.runs.get(id) === run) this.runs.delete(id);
      // Given back (here or by shutdown) or never started: no longer held.
      claimed.held.letGo(jobs.length - started);
    }
  }

  /**
   * Counts a rate-limited queue's claims given back whole in a row. Each spends rate budget for
   * nothing; a process that is always late (an event loop blocked past the grace at every claim)
   * would never run the queue, so after GIVEN_BACK_WARNING of them it says so once, with the fix.
   */
  private noteGivenBack(settings: RunSettings, givenBack: boolean, lateMs: number): void {
    const { queueName } = settings.options;
    if (!givenBack) {
      this.givenBackInRow.delete(queueName);
      return;
    }
    const inRow = (this.givenBackInRow.get(queueName) ?? 0) + 1;
    this.givenBackInRow.set(queueName, inRow);
    if (inRow < GIVEN_BACK_WARNING || this.givenBackWarned.has(queueName)) return;
    this.givenBackWarned.add(queueName);
    settings.logger.warn(flowGraceMessages.givenBackInRow(queueName, inRow, lateMs, settings.flow!.startGraceMs));
  }
}
