import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import {
  AttemptsExhaustedError,
  CorruptPayloadError,
  EventCancelledError,
  InvalidWorkerOptionsError,
  LeaseLostError,
  NonErrorThrownError,
  UnknownEventError,
  WorkerError,
  WorkerNotConfiguredError,
} from '../errors/worker.error.js';
import type { IBaseEvent } from '../interfaces/base-event.interface.js';
import type { CancelledEvent, CancelTarget } from '../interfaces/cancel.interface.js';
import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import { emptyStatistics } from '../common/queue-statistics.js';
import type { WorkerLifecycle } from '../lifecycle/worker-lifecycle.js';
import type { IEventService } from '../interfaces/event-service.interface.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';
import type { IWorkerCreator, IWorkerCreatorConstructor } from '../interfaces/worker-creator.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type { RunWorkerResult, TEventWorkerOptions } from '../interfaces/worker-options.interface.js';
import type {
  IWorkerQueueRepository,
  IWorkerRepository,
  QueueHealth,
  RetryRequest,
} from '../interfaces/worker-repository.interface.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_LEASE_SECONDS,
  HEARTBEATS_PER_LEASE,
  QUEUED_ITEMS_COUNT_LIMIT,
} from '../worker.defaults.js';
import { describeError } from '../errors/describe-error.js';
import { retryDelaySeconds } from './retry-policy.js';
import { ClaimedRun } from './claimed-run.js';
import { type PoolRun, startPool } from './run-pool.js';
import { isQueueRepository, SeedRepositoryAdapter } from './seed-repository.adapter.js';
import {
  assertBatchSize,
  assertHeartbeat,
  assertInteger,
  assertNumber,
  assertKnownKeys,
  assertPlainObject,
  assertRetrySettings,
  assertStoredName,
  rowIdOf,
} from '../common/worker-options.validation.js';

/** Every key of TEventWorkerOptions: a misspelt option (queueNme) is refused, not ignored. */
const RUN_WORKER_KEYS = [
  'queueName',
  'retries',
  'runAfterSeconds',
  'runOnce',
  'workerCreator',
  'concurrency',
  'batchSize',
  'backoff',
  'timeoutSeconds',
] as const satisfies readonly (keyof TEventWorkerOptions)[];

export interface WorkerServiceSettings {
  /** How long a claimed row stays leased to this worker. */
  leaseSeconds?: number;
  /** How often running events' leases are extended; default a third of leaseSeconds. */
  heartbeatSeconds?: number;
  /** Concurrency of a queue when runWorker() is not given one. */
  concurrencyFor?: (queueName: string) => number;
  /** Rows per claim of a queue when runWorker() is not given batchSize (undefined: its concurrency). */
  batchSizeFor?: (queueName: string) => number | undefined;
  /** Queues getHealth() reports even while they are empty (WorkerModule: the polled queues). */
  knownQueues?: () => string[];
  /** Where 'completed', 'retrying' and 'failed' are announced (@OnWorkerEvent() hooks, metrics). */
  lifecycle?: WorkerLifecycle;
}

interface RunContext {
  options: TEventWorkerOptions;
  creator: IWorkerCreator;
  repository: IWorkerQueueRepository;
  eventService: IEventService;
  result: RunWorkerResult;
  /** Start of the current pass: rows due after it wait for the next pass. */
  dueBy: Date;
  /** Events of the current batch that succeeded; their rows are deleted together when the batch ends. */
  succeeded: { model: IWorkerModel; outcome: LifecycleOutcome; durationMs: number }[];
  /** Failed attempts of the current batch with attempts left; recorded together when the batch ends. */
  retrying: (FailedAttempt & { retry: RetryRequest })[];
  /** Failed attempts of the current batch whose rows move to the failed store together when the batch ends. */
  failing: (FailedAttempt & { failed: IWorkerModel })[];
  /** The last batch's outcomes being recorded (see runPass). */
  recording?: Promise<void>;
}

type LifecycleOutcome = { queueName: string; eventName: string; attributes: IWorkerAttributes; event?: IBaseEvent };

interface FailedAttempt {
  model: IWorkerModel;
  outcome: LifecycleOutcome;
  durationMs: number;
  error: Error;
}

/** What became of a failed attempt's row: recorded (retried or moved), removed as cancelled, left to the worker that holds it, or not recorded (logged). */
type Recorded = 'recorded' | 'cancelled' | 'lease-lost' | 'not-recorded';

/**
 * The seed's WorkerService: `runWorker(options)` leases the due rows of one queue, runs their events
 * and records each outcome (delete on success, retry later, or move to the failed store).
 */
export class WorkerService {
  /** Identifies this process's claims (host:pid:random). */
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private logger: ILoggerService = new Logger(WorkerService.name);
  private eventService?: IEventService;
  private repository?: IWorkerQueueRepository;
  private workerCreator?: IWorkerCreator;
  private leaseMs = DEFAULT_LEASE_SECONDS * 1000;
  private concurrencyFor: (queueName: string) => number = () => DEFAULT_CONCURRENCY;
  private batchSizeFor: (queueName: string) => number | undefined = () => undefined;
  private knownQueues: () => string[] = () => [];
  private lifecycle?: WorkerLifecycle;
  private heartbeatMs = (DEFAULT_LEASE_SECONDS * 1000) / HEARTBEATS_PER_LEASE;
  private readonly heartbeats = new Set<{ stop(): void }>();
  private stopping = false;
  private readonly activeRuns = new Set<Promise<void>>();
  /** Queues woken by a commit notification: their next claim skips the check for due rows. */
  private readonly wokenQueues = new Set<string>();
  /** A run of the queue waiting for its last outcomes to be recorded, which a wake-up ends early. */
  private readonly wakeWaiters = new Map<string, () => void>();
  /** The batches whose pools may still start events: shutdown() gives their unstarted rows back at once. */
  private readonly unstartedBatches = new Set<{ take(): IWorkerModel[]; repository: IWorkerQueueRepository }>();
  /** Claims on their way to the database: shutdown waits for them, then gives back what they took. */
  private readonly claims = new Set<Promise<IWorkerModel[]>>();
  /** Every claimed row of this process until its outcome is recorded, by id: cancel() aborts through it. */
  private readonly claimedRuns = new Map<string, ClaimedRun>();

  setLogger(logger: ILoggerService): void {
    this.logger = logger;
  }

  setEventService(eventService: IEventService): void {
    this.eventService = eventService;
  }

  /** Accepts the seed's plain repository too (then without leases: one worker process per queue). */
  setWorkerRepository(repository: IWorkerRepository): void {
    this.repository = isQueueRepository(repository) ? repository : new SeedRepositoryAdapter(repository);
  }

  setWorkerCreator(workerCreator: IWorkerCreator): void {
    this.workerCreator = workerCreator;
  }

  configure(settings: WorkerServiceSettings): void {
    if (settings.leaseSeconds !== undefined) {
      assertNumber('leaseSeconds', settings.leaseSeconds, 1);
      this.leaseMs = settings.leaseSeconds * 1000;
      this.heartbeatMs = this.leaseMs / HEARTBEATS_PER_LEASE;
    }
    if (settings.heartbeatSeconds !== undefined) {
      assertHeartbeat(settings.heartbeatSeconds, this.leaseMs / 1000);
      this.heartbeatMs = settings.heartbeatSeconds * 1000;
    }
    if (settings.concurrencyFor) this.concurrencyFor = settings.concurrencyFor;
    if (settings.batchSizeFor) this.batchSizeFor = settings.batchSizeFor;
    if (settings.knownQueues) this.knownQueues = settings.knownQueues;
    if (settings.lifecycle) this.lifecycle = settings.lifecycle;
  }

  /**
   * Processes the due events of `options.queueName` and resolves with what happened. With `runOnce`
   * one pass over what is due at the start; otherwise passes until nothing is due.
   */
  async runWorker(options: TEventWorkerOptions): Promise<RunWorkerResult> {
    validateRunWorkerOptions(options);
    const result: RunWorkerResult = { queueName: options.queueName, processed: 0, failed: 0, retried: 0, cancelled: 0 };
    if (this.stopping) return result;
    const context: RunContext = {
      options,
      creator: this.resolveCreator(options.workerCreator),
      repository: this.requireRepository(),
      eventService: this.requireEventService(),
      result,
      dueBy: new Date(0),
      succeeded: [],
      retrying: [],
      failing: [],
    };
    const run = this.drain(context);
    this.activeRuns.add(run);
    try {
      await run;
    } finally {
      this.activeRuns.delete(run);
    }
    return result;
  }

  /**
   * Active (pending or running) and failed counts per queue: the queues named, or else every known
   * queue (under WorkerModule: the polled ones) and every queue with rows, by name.
   */
  async getHealth(queueNames?: string[]): Promise<QueueHealth[]> {
    const repository = this.requireRepository();
    if (queueNames) return repository.getQueueHealth(checkedQueueNames(queueNames));
    const withRows = await repository.getQueueHealth();
    const known = this.knownQueues().filter((queueName) => !withRows.some((health) => health.queueName === queueName));
    const empty = known.map((queueName) => ({ queueName, active: 0, failed: 0, total: 0 }));
    return [...withRows, ...empty].sort((a, b) => a.queueName.localeCompare(b.queueName));
  }

  /**
   * Pending, due, running, delayed and failed counts and the age of the oldest due event, per queue,
   * in one query: the queues named, or else every known queue and every queue with rows, by name.
   */
  async getQueueStatistics(queueNames?: string[]): Promise<QueueStatistics[]> {
    const repository = this.requireRepository();
    if (!repository.getQueueStatistics)
      throw new WorkerError('The worker repository in use does not provide getQueueStatistics()');
    if (queueNames) return repository.getQueueStatistics(checkedQueueNames(queueNames));
    const withRows = await repository.getQueueStatistics();
    const known = this.knownQueues().filter(
      (queueName) => !withRows.some((statistics) => statistics.queueName === queueName),
    );
    return [...withRows, ...known.map(emptyStatistics)].sort((a, b) => a.queueName.localeCompare(b.queueName));
  }

  /**
   * Cancels a pending event by row id or by the unique key it was dispatched with. A waiting event is
   * removed. A running one gets its AbortSignal aborted with EventCancelledError (at once when it runs
   * in this process, at the running worker's next heartbeat elsewhere) and its row is removed when the
   * attempt ends, never retried. Resolves to undefined when no such event is pending.
   */
  async cancel(target: CancelTarget): Promise<CancelledEvent | undefined> {
    const repository = this.requireRepository();
    const request = cancelRequestOf(target);
    if (!repository.cancelWorker) throw new WorkerError('The worker repository in use does not provide cancelWorker()');
    const cancelled = await repository.cancelWorker(request, await currentTime(repository));
    if (!cancelled) return undefined;
    if (cancelled.wasRunning) {
      this.abortCancelled(cancelled.id, cancelled.eventName);
    } else if (cancelled.attributes) {
      await this.lifecycle?.emit({
        name: 'cancelled',
        queueName: cancelled.queueName,
        eventName: cancelled.eventName,
        attributes: cancelled.attributes,
      });
    }
    return cancelled;
  }

  private abortCancelled(id: string, eventName?: string): void {
    this.claimedRuns.get(id)?.abort(new EventCancelledError(id, eventName));
  }

  /** Rows were committed to this queue (a PostgreSQL notification): its next claim goes straight to the rows. */
  noteWoken(queueName: string): void {
    this.wokenQueues.add(queueName);
    this.wakeWaiters.get(queueName)?.();
  }

  /** True while a wake-up of the queue has not been followed by a claim. */
  isWoken(queueName: string): boolean {
    return this.wokenQueues.has(queueName);
  }

  /** Waits for the last batch's outcomes to be recorded; resolves true instead if the queue is woken first. */
  private async recordedOrWoken(context: RunContext): Promise<boolean> {
    const { queueName } = context.options;
    if (this.wokenQueues.has(queueName)) return true;
    let wake: () => void = () => undefined;
    const woken = new Promise<boolean>((resolve) => (wake = () => resolve(true)));
    this.wakeWaiters.set(queueName, wake);
    try {
      return await Promise.race([(context.recording ?? Promise.resolve()).then(() => false), woken]);
    } finally {
      if (this.wakeWaiters.get(queueName) === wake) this.wakeWaiters.delete(queueName);
    }
  }

  /** True once shutdown() was called: runWorker() then claims nothing. */
  get isStopping(): boolean {
    return this.stopping;
  }

  /**
   * Stops claiming, gives back at once the claimed rows that never started (their attempt taken back,
   * whatever the grace), and waits up to `graceMs` for running events to finish. Events still running
   * after the grace period keep their lease, no longer renewed, until it expires; another worker then
   * runs them again, and that attempt counts.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.stopping = true;
    // A claim in flight takes rows that must be given back before the database closes. Each run that
    // claimed registers its batch as soon as its claim returns, ahead of this continuation.
    await Promise.allSettled([...this.claims]);
    await this.releaseUnstarted();
    if (this.activeRuns.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    const finished = await Promise.race([
      Promise.allSettled([...this.activeRuns]).then(() => true),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
    ]);
    clearTimeout(timer);
    if (!finished) {
      // Whatever still runs keeps only the lease it has: renewing it would outlive the DataSource.
      for (const heartbeat of [...this.heartbeats]) heartbeat.stop();
      this.logger.warn(
        `Shutdown grace period (${graceMs} ms) ended with events still running; ` +
          `their leases expire and another worker runs them again`,
      );
    }
  }

  /** Gives back the rows of running batches that never started, so they do not wait for the batch to end. */
  private async releaseUnstarted(): Promise<void> {
    for (const batch of [...this.unstartedBatches]) {
      this.unstartedBatches.delete(batch);
      const unstarted = batch.take();
      if (unstarted.length === 0) continue;
      try {
        await batch.repository.releaseWorkers(unstarted);
      } catch (error) {
        this.logger.warn(
          `Could not give back ${unstarted.length} claimed events that never started; they run when their lease expires: ` +
            describeError(error),
        );
      }
    }
  }

  private async drain(context: RunContext): Promise<void> {
    const { options } = context;
    const concurrency = options.concurrency ?? this.concurrencyFor(options.queueName);
    const batchSize = options.batchSize ?? this.batchSizeFor(options.queueName) ?? concurrency;
    try {
      for (let firstPass = true; ; firstPass = false) {
        // A later pass reaches at least 1 ms past the previous one, where its zero-delay retries fall due.
        // Passes start on the database's clock (see currentTime), like every due time they compare with.
        const now = await currentTime(context.repository);
        context.dueBy = new Date(firstPass ? now : Math.max(now, context.dueBy.getTime() + 1));
        const retriedBefore = context.result.retried;
        await this.runPass(context, batchSize, concurrency);
        if (options.runOnce || this.stopping) break;
        // The pass took everything due when it began. Another pass only for what can be due by now:
        // rows it retried (zero-delay retries), or rows whose commit woke the queue meanwhile; a
        // wake-up starts it without waiting for the last outcomes to be recorded. Anything else that
        // falls due is the next poll's.
        if (await this.recordedOrWoken(context)) continue;
        if (context.result.retried === retriedBefore) break;
      }
    } finally {
      await context.recording;
    }
  }

  /**
   * Claims and runs batches of the rows due at `context.dueBy` until a claim comes back empty or short
   * of the batch size, and resolves to how many rows it claimed. A batch's outcomes are recorded while
   * the next batch is claimed (`context.recording`): its rows stay leased until then, so no claim can
   * take them.
   */
  private async runPass(context: RunContext, batchSize: number, concurrency: number): Promise<number> {
    const { options, repository } = context;
    let claimedInPass = 0;
    while (!this.stopping) {
      const woken = this.wokenQueues.delete(options.queueName);
      // Rows committed since the pass began are what woke the queue: take them in this pass.
      if (woken && !options.runOnce) {
        context.dueBy = new Date(Math.max(await currentTime(repository), context.dueBy.getTime()));
        // Shutdown may have begun meanwhile, and it waits only for claims already on their way.
        if (this.stopping) break;
      }
      const claim = repository.claimWorkers({
        queueName: options.queueName,
        limit: batchSize,
        workerId: this.workerId,
        leaseMs: this.leaseMs,
        dueBy: context.dueBy,
        expectDue: woken,
      });
      // Shutdown waits for a claim in flight, whatever its grace, to give back what it took.
      this.claims.add(claim);
      let batch: IWorkerModel[];
      try {
        batch = await claim;
      } finally {
        this.claims.delete(claim);
      }
      if (batch.length === 0) break;
      const firstOfPass = claimedInPass === 0;
      // A batch short of the limit took everything due at `dueBy`: the pass ends with it (what became
      // due since is for the next pass, or wakes this one).
      const tookAllDue = batch.length < batchSize;
      claimedInPass += batch.length;
      const runs = batch.map((model) => this.registerRun(model));
      const heartbeat = this.startHeartbeat(repository, batch, runs, options.queueName);
      let handedOver = false;
      // From the claim on, shutdown can give back the rows this batch has not started: all of them
      // until the pool exists, then those the pool has not started.
      let pool: PoolRun<IWorkerModel> | undefined;
      let givenBack = false;
      const unstartedOfBatch = {
        repository,
        take: (): IWorkerModel[] => (pool ? pool.takeUnstarted() : givenBack ? [] : ((givenBack = true), batch)),
      };
      this.unstartedBatches.add(unstartedOfBatch);
      try {
        // Once per pass that found work (idle polls cost a single query), before its first event
        // starts, as the seed logs it. Only a full batch asks what else is due: one count per pass.
        if (firstOfPass && !this.stopping) {
          await this.logQueuedItems(
            repository,
            options.queueName,
            batch.length,
            tookAllDue ? undefined : context.dueBy,
          );
        }
        pool = startPool(
          givenBack ? [] : batch,
          concurrency,
          () => !this.stopping,
          (model) => this.processSafely(model, context),
        );
        const unstarted = await pool.done;
        this.unstartedBatches.delete(unstartedOfBatch);
        if (unstarted.length > 0) await repository.releaseWorkers(unstarted);
        await context.recording;
        // recordBatch() takes this batch's outcomes before its first await; the heartbeat keeps the
        // leases until they are recorded.
        context.recording = this.recordBatch(context).finally(() => heartbeat.stop());
        handedOver = true;
      } finally {
        this.unstartedBatches.delete(unstartedOfBatch);
        if (!handedOver) heartbeat.stop();
        for (const claimed of runs) {
          // Only this batch's: the same row may have been claimed again meanwhile (its lease expired).
          if (claimed && this.claimedRuns.get(claimed.id) === claimed.run) this.claimedRuns.delete(claimed.id);
        }
      }
      if (tookAllDue && !this.wokenQueues.has(options.queueName)) break;
    }
    return claimedInPass;
  }

  /**
   * Logs the seed's "Queued items: N": this batch plus what is still due at `countBy`, or the batch
   * alone when it took everything due (`countBy` undefined).
   */
  private async logQueuedItems(
    repository: IWorkerQueueRepository,
    queueName: string,
    claimed: number,
    countBy: Date | undefined,
  ): Promise<void> {
    if (countBy === undefined) {
      this.logger.log(`Queued items: ${claimed}`);
      return;
    }
    try {
      // Counted no further than QUEUED_ITEMS_COUNT_LIMIT: the first batch waits for this count, and a
      // backlog of a million rows need not be read to say that there is one.
      const stillDue = await repository.countDueWorkers(queueName, countBy, QUEUED_ITEMS_COUNT_LIMIT);
      this.logger.log(`Queued items: ${claimed + stillDue}${stillDue >= QUEUED_ITEMS_COUNT_LIMIT ? '+' : ''}`);
    } catch (error) {
      // Only the log line is lost: the claimed batch runs all the same.
      this.logger.warn(`Could not count the due events of queue ${queueName}: ${describeError(error)}`);
    }
  }

  /**
   * Extends the batch's leases every heartbeat while its events run, so a long event keeps its row.
   * Renewals are fenced by the lease token: rows already finished, or taken over, are not touched.
   */
  private startHeartbeat(
    repository: IWorkerQueueRepository,
    batch: IWorkerModel[],
    runs: ({ id: string; run: ClaimedRun } | undefined)[],
    queueName: string,
  ): { stop(): void } {
    // This batch's runs, not the newest run of each id: a row retried at once may already be claimed
    // again, by a later pass of this process, and that run holds the lease.
    const runOf = new Map(runs.flatMap((claimed) => (claimed ? [[claimed.id, claimed.run] as const] : [])));
    let renewing = false;
    const beat = async (): Promise<void> => {
      if (renewing) return;
      renewing = true;
      try {
        const renewal = await repository.renewLeases(batch, this.leaseMs);
        const { cancelled, lost } =
          !renewal || Array.isArray(renewal) ? { cancelled: renewal ?? [], lost: [] } : renewal;
        for (const id of cancelled) this.abortCancelled(id);
        for (const id of lost) {
          // Another worker took the row after the lease expired (this process was paused, or could not
          // renew), or it was deleted: stop the event now instead of letting it run beside the new holder.
          const run = runOf.get(id);
          if (run && !run.settled) run.abort(new LeaseLostError(id));
        }
      } catch (error) {
        this.logger.warn(`Could not renew the leases of running events in queue ${queueName}: ${describeError(error)}`);
      } finally {
        renewing = false;
      }
    };
    const timer = setInterval(() => void beat(), this.heartbeatMs);
    timer.unref();
    const heartbeat = { stop: () => (clearInterval(timer), this.heartbeats.delete(heartbeat)) };
    this.heartbeats.add(heartbeat);
    return heartbeat;
  }

  /** Registers a claimed row's run, so cancel() and the heartbeat can reach it before and while it runs. */
  private registerRun(model: IWorkerModel): { id: string; run: ClaimedRun } | undefined {
    const id = (model as { id?: string }).id;
    if (id === undefined) return undefined;
    const run = new ClaimedRun();
    this.claimedRuns.set(id, run);
    return { id, run };
  }

  /** process(), with anything it did not expect logged instead of ending the pass for the other rows. */
  private async processSafely(model: IWorkerModel, context: RunContext): Promise<void> {
    try {
      await this.process(model, context);
    } catch (error) {
      this.logger.error(
        `Unexpected error while processing a row of queue ${context.options.queueName}; ` +
          `it runs again when its lease expires: ${describeError(error)}`,
      );
    }
  }

  /**
   * Runs one claimed row and records the outcome. Whatever goes wrong before the outcome is recorded
   * counts as a failed attempt of that row; a row that cannot even be read stays leased and runs
   * again when its lease expires, so no row is lost and none blocks the pass.
   */
  private async process(model: IWorkerModel, context: RunContext): Promise<void> {
    const { options, eventService, repository, result } = context;
    const claimed = this.readClaimed(model, options.queueName);
    if (!claimed) return;
    const { data } = claimed;
    const run = (data.id !== undefined ? this.claimedRuns.get(data.id) : undefined) ?? new ClaimedRun();
    let failure = claimed.failure;
    let permanent = failure !== undefined;
    let maxAttempts = options.retries;
    let policy: Pick<TEventWorkerOptions, 'runAfterSeconds' | 'backoff' | 'timeoutSeconds'> = options;
    let event: IBaseEvent | undefined;
    const startedAt = performance.now();
    try {
      const eventOptions = eventService.getEventOptions(data.eventName);
      maxAttempts = eventOptions?.retries ?? maxAttempts;
      // @QueueEvent() options win over the run's (queue's) options, setting by setting.
      policy = {
        runAfterSeconds: eventOptions?.runAfterSeconds ?? options.runAfterSeconds,
        backoff: eventOptions?.backoff ?? options.backoff,
        timeoutSeconds: eventOptions?.timeoutSeconds ?? options.timeoutSeconds,
      };
      if (!failure && data.attempts > maxAttempts) {
        failure = new AttemptsExhaustedError(data.id, data.eventName, maxAttempts);
        permanent = true;
      }
      if (!failure) {
        event = eventService.createEvent(data.eventName, data.payload);
        this.logger.debug?.(
          `Processing ${data.eventName} (row ${data.id}, attempt ${data.attempts} of ${maxAttempts})`,
        );
        await run.execute(event, data.eventName, policy.timeoutSeconds);
      }
    } catch (thrown) {
      failure ??= thrown instanceof Error ? thrown : new NonErrorThrownError(thrown);
      permanent ||= failure instanceof UnknownEventError;
    }
    const outcome = { queueName: data.queueName, eventName: data.eventName, attributes: data, event };
    if (failure && run.abortReason instanceof LeaseLostError) {
      // The heartbeat found the row held by another worker (or gone): its writes would be fenced out anyway.
      this.logger.warn(
        `${run.abortReason.message}; ${data.eventName} was aborted and the worker that holds it now decides its outcome`,
      );
      return;
    }
    try {
      if (failure && run.abortReason instanceof EventCancelledError) {
        // Cancelled before or while it ran: removed, whatever the attempt did after the abort.
        await repository.completeWorker(model);
        await this.recordCancelled(outcome, performance.now() - startedAt, result);
        return;
      }
      if (!failure) {
        context.succeeded.push({ model, outcome, durationMs: performance.now() - startedAt });
        return;
      }
      this.logger.error(
        `Event processing failed: ${data.eventName} (row ${data.id}, attempt ${data.attempts} of ${maxAttempts}): ${failure.message}`,
        failure.stack,
      );
      const error = failure.stack ?? `${failure.name}: ${failure.message}`;
      const attempt = { model, outcome, durationMs: performance.now() - startedAt, error: failure };
      if (permanent || data.attempts >= maxAttempts) {
        const now = new Date(await currentTime(repository));
        const failed = context.creator.createFailedWorkerModel({
          ...data,
          error,
          retries: maxAttempts,
          failedAt: now,
          updatedAt: now,
        });
        context.failing.push({ ...attempt, failed });
      } else {
        const delaySeconds = retryDelaySeconds(
          policy.backoff,
          policy.runAfterSeconds,
          data.attempts,
          failure,
          (problem) =>
            this.logger.error(
              `The backoff function of ${data.eventName} ${problem}; retrying after runAfterSeconds instead`,
            ),
        );
        // Strictly after the pass start, so a runOnce pass never picks its own retries up again.
        const dueAt = (await currentTime(repository)) + delaySeconds * 1000;
        const availableAt = new Date(Math.max(dueAt, context.dueBy.getTime() + 1));
        context.retrying.push({ ...attempt, retry: { error, retries: maxAttempts, availableAt } });
      }
    } catch (storageError) {
      if (storageError instanceof LeaseLostError) {
        this.logger.warn(
          `${storageError.message}; the worker that holds it now decides the outcome of ${data.eventName}`,
        );
      } else {
        this.logger.error(
          `Could not record the outcome of ${data.eventName} (row ${data.id}); it runs again when its lease expires: ` +
            `${describeError(storageError)}`,
        );
      }
    }
  }

  /** Records the outcomes of a batch's events once it has run: completions, then retries, then failed moves. */
  private async recordBatch(context: RunContext): Promise<void> {
    const { repository } = context;
    // Taken before the first await: the next batch's outcomes collect while these are written.
    const succeeded = context.succeeded.splice(0);
    const retrying = context.retrying.splice(0);
    const failing = context.failing.splice(0);
    await this.completeSucceeded(context, succeeded);
    await this.recordFailures(context, retrying, 'retrying', async (entries) =>
      repository.retryWorkers
        ? this.byEntry(entries, await repository.retryWorkers(entries), 'retried')
        : this.oneByOne(entries, (entry) => repository.retryWorker(entry.model, entry.retry)),
    );
    await this.recordFailures(context, failing, 'failed', async (entries) =>
      repository.failWorkers
        ? this.byEntry(entries, await repository.failWorkers(entries), 'moved')
        : this.oneByOne(entries, (entry) => repository.failWorker(entry.model, entry.failed)),
    );
  }

  /**
   * Records failed attempts through `record` (one transaction for all of them where the repository
   * can), then counts and announces each as before. If recording fails, the rows stay leased and run
   * again when the lease expires.
   */
  private async recordFailures<E extends FailedAttempt>(
    context: RunContext,
    attempts: E[],
    name: 'retrying' | 'failed',
    record: (attempts: E[]) => Promise<Recorded[]>,
  ): Promise<void> {
    if (attempts.length === 0) return;
    const { result, options } = context;
    let recorded: Recorded[];
    try {
      recorded = await record(attempts);
    } catch (error) {
      this.logger.error(
        `Could not record ${attempts.length} failed attempts of queue ${options.queueName}; they run again when their lease expires: ` +
          describeError(error),
      );
      return;
    }
    for (const [index, { outcome, durationMs, error }] of attempts.entries()) {
      const what = recorded[index];
      if (what === 'recorded') {
        if (name === 'retrying') result.retried++;
        else result.failed++;
        await this.lifecycle?.emit({ name, ...outcome, durationMs, error });
      } else if (what === 'cancelled') {
        // Cancelled in another process before this worker's heartbeat told it; the repository removed the row.
        await this.recordCancelled(outcome, durationMs, result);
      } else if (what === 'lease-lost') {
        const lost = new LeaseLostError(outcome.attributes.id ?? '(unsaved)');
        this.logger.warn(`${lost.message}; the worker that holds it now decides the outcome of ${outcome.eventName}`);
      }
    }
  }

  /** A repository's outcomes by row id, in the order of `entries`. */
  private byEntry<O extends string>(
    entries: FailedAttempt[],
    outcomes: Map<string, O | 'cancelled' | 'lease-lost'>,
    done: O,
  ): Recorded[] {
    return entries.map(({ outcome }): Recorded => {
      const found = outcomes.get(outcome.attributes.id ?? '');
      if (found === done) return 'recorded';
      if (found === 'cancelled') return 'cancelled';
      if (found === 'lease-lost') return 'lease-lost';
      this.logger.error(
        `The worker repository reported no outcome for ${outcome.eventName} (row ${outcome.attributes.id}); it runs again when its lease expires`,
      );
      return 'not-recorded';
    });
  }

  /** For repositories without the batch methods: one write per row, each failing on its own. */
  private async oneByOne<E extends FailedAttempt>(
    entries: E[],
    record: (entry: E) => Promise<void>,
  ): Promise<Recorded[]> {
    const recorded: Recorded[] = [];
    for (const entry of entries) {
      try {
        await record(entry);
        recorded.push('recorded');
      } catch (error) {
        if (error instanceof EventCancelledError) recorded.push('cancelled');
        else if (error instanceof LeaseLostError) recorded.push('lease-lost');
        else {
          const { eventName, attributes } = entry.outcome;
          this.logger.error(
            `Could not record the outcome of ${eventName} (row ${attributes.id}); it runs again when its lease expires: ${describeError(error)}`,
          );
          recorded.push('not-recorded');
        }
      }
    }
    return recorded;
  }

  /**
   * Deletes the rows of the batch's successful events in one statement per lease (fenced like every
   * write of a worker). If that fails, the rows stay leased and run again when the lease expires.
   */
  private async completeSucceeded(context: RunContext, succeeded: RunContext['succeeded']): Promise<void> {
    if (succeeded.length === 0) return;
    const { repository, result, options } = context;
    const models = succeeded.map(({ model }) => model);
    let lost: Set<string>;
    try {
      lost = new Set(
        repository.completeWorkers
          ? await repository.completeWorkers(models)
          : await completeOneByOne(repository, models),
      );
    } catch (error) {
      this.logger.error(
        `Could not record ${models.length} finished events of queue ${options.queueName}; they run again when their lease expires: ` +
          describeError(error),
      );
      return;
    }
    for (const id of lost) {
      this.logger.warn(
        `${new LeaseLostError(id).message}; the worker that holds it now decides the outcome of its event`,
      );
    }
    const recorded =
      lost.size === 0 ? succeeded : succeeded.filter(({ outcome }) => !lost.has(outcome.attributes.id ?? ''));
    result.processed += recorded.length;
    if (!this.lifecycle?.hasListeners) return;
    for (const { outcome, durationMs } of recorded)
      await this.lifecycle.emit({ name: 'completed', ...outcome, durationMs });
  }

  private async recordCancelled(outcome: LifecycleOutcome, durationMs: number, result: RunWorkerResult): Promise<void> {
    result.cancelled++;
    this.logger.log(
      `${outcome.eventName} (row ${outcome.attributes.id}) was cancelled; its row is removed and not retried`,
    );
    await this.lifecycle?.emit({ name: 'cancelled', ...outcome, durationMs });
  }

  /**
   * The claimed row's attributes. A payload that no longer parses becomes a permanent failure whose
   * failed copy keeps the raw text (as a JSON string); a row that cannot be read at all is left leased.
   */
  private readClaimed(
    model: IWorkerModel,
    queueName: string,
  ): { data: IWorkerAttributes; failure?: Error } | undefined {
    try {
      const data = model.getWorkerData();
      if (data) return { data };
      this.logger.error(`A claimed row of queue ${queueName} has no data; it stays leased until its lease expires`);
    } catch (error) {
      if (error instanceof CorruptPayloadError)
        return { data: { ...error.attributes, payload: error.rawPayload }, failure: error };
      this.logger.error(
        `Could not read a claimed row of queue ${queueName}; it runs again when its lease expires: ${describeError(error)}`,
      );
    }
    return undefined;
  }

  private resolveCreator(creatorClass?: IWorkerCreatorConstructor): IWorkerCreator {
    if (this.workerCreator && (!creatorClass || this.workerCreator instanceof creatorClass)) return this.workerCreator;
    if (creatorClass) return new creatorClass();
    throw new WorkerNotConfiguredError('Worker creator', 'setWorkerCreator');
  }

  private requireRepository(): IWorkerQueueRepository {
    if (!this.repository) throw new WorkerNotConfiguredError('Worker repository', 'setWorkerRepository');
    return this.repository;
  }

  private requireEventService(): IEventService {
    if (!this.eventService) throw new WorkerNotConfiguredError('Event service', 'setEventService');
    return this.eventService;
  }
}

/**
 * The database's time when the repository can tell it (the TypeORM one measures its offset to the
 * server, see DatabaseClock), else this process's clock (the seed's repositories).
 */
function currentTime(repository: IWorkerQueueRepository): Promise<number> {
  return repository.currentTime ? repository.currentTime() : Promise.resolve(Date.now());
}

/** For repositories without completeWorkers(): one fenced delete per row; resolves to the ids whose lease was lost. */
async function completeOneByOne(repository: IWorkerQueueRepository, models: IWorkerModel[]): Promise<string[]> {
  const lost: string[] = [];
  for (const model of models) {
    try {
      await repository.completeWorker(model);
    } catch (error) {
      if (!(error instanceof LeaseLostError)) throw error;
      lost.push(error.workerId);
    }
  }
  return lost;
}

/** Queue names asked about (getHealth, getQueueStatistics), each checked as a stored name. */
function checkedQueueNames(queueNames: unknown): string[] {
  if (!Array.isArray(queueNames)) throw new InvalidWorkerOptionsError('queueNames', 'must be an array of queue names');
  queueNames.forEach((queueName: unknown, index) => assertStoredName(`queueNames[${index}]`, queueName));
  return queueNames as string[];
}

/** The repository's form of a cancel target, checked (a row id, or a queue and a unique key). */
function cancelRequestOf(target: CancelTarget): { id: string } | { queueName: string; uniqueKey: string } {
  if (typeof target === 'string' || typeof target === 'number') return { id: rowIdOf(target, 'an event id') };
  assertPlainObject('cancel target', target);
  assertKnownKeys('', target, ['queueName', 'uniqueKey']);
  assertStoredName('queueName', target.queueName);
  assertStoredName('uniqueKey', target.uniqueKey);
  return { queueName: target.queueName, uniqueKey: target.uniqueKey };
}

export function validateRunWorkerOptions(options: TEventWorkerOptions): void {
  assertPlainObject('runWorker options', options);
  assertKnownKeys('', options, RUN_WORKER_KEYS);
  assertStoredName('queueName', options.queueName);
  assertRetrySettings((setting) => setting, options, true);
  if (options.concurrency !== undefined) assertInteger('concurrency', options.concurrency, 1);
  if (options.batchSize !== undefined) assertBatchSize('batchSize', options.batchSize);
}
