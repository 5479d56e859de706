import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { Logger } from '@nestjs/common';
import { WorkerError, WorkerNotConfiguredError } from '../errors/worker.error.js';
import type { CancelledEvent, CancelTarget } from '../interfaces/cancel.interface.js';
import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import { emptyStatistics } from '../common/queue-statistics.js';
import type { WorkerLifecycle } from '../lifecycle/worker-lifecycle.js';
import type { IEventService } from '../interfaces/event-service.interface.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { IWorkerCreator, IWorkerCreatorConstructor } from '../interfaces/worker-creator.interface.js';
import type { RetentionOptions } from '../interfaces/job-state.interface.js';
import type { RunWorkerResult, TEventWorkerOptions } from '../interfaces/worker-options.interface.js';
import type {
  IWorkerQueueRepository,
  IWorkerRepository,
  QueueHealth,
} from '../interfaces/worker-repository.interface.js';
import {
  DEFAULT_CONCURRENCY,
  DEFAULT_LEASE_SECONDS,
  DEFAULT_START_GRACE_MS,
  HEARTBEATS_PER_LEASE,
} from '../worker.defaults.js';
import { processingMessages as messages } from '../worker.messages.js';
import {
  assertHeartbeat,
  assertNumber,
  keepsCompleted,
  MAX_TIMER_SECONDS,
} from '../common/worker-options.validation.js';
import { type BatchQueueRepository, withBatchMethods } from './batch-repository.adapter.js';
import { BatchLoop } from './batch-loop.js';
import { OutcomeRecorder } from './outcome-recorder.js';
import { ProcessRegistry } from './process-registry.js';
import {
  cancelRequestOf,
  checkedQueueNames,
  claimFlowLimits,
  type QueueFlowSettings,
  validateRunWorkerOptions,
} from './run-options.js';
import { isQueueRepository, SeedRepositoryAdapter } from './seed-repository.adapter.js';
import { WakeUps } from './wake-ups.js';

export { validateRunWorkerOptions };

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
  /** Whether a queue keeps its completed events when runWorker() is not told (WorkerModule: the queue's option). */
  keepCompletedFor?: (queueName: string) => RetentionOptions | false;
  /** Largest result kept in the history, in bytes of JSON (WorkerModule: maxPayloadBytes). */
  maxPayloadBytes?: number;
  /**
   * A queue's flow-control limits (WorkerModule: its globalConcurrency, keyConcurrency, rateLimit and
   * keyRateLimit, and the module's rateLimits they may name). A queue with none takes the plain claim.
   */
  flowFor?: (queueName: string) => QueueFlowSettings | undefined;
  /**
   * How long after its start was stamped a rate-limited event may still start (ms, default
   * DEFAULT_START_GRACE_MS; 0: none may start late).
   */
  startGraceMs?: number;
}

/**
 * larascript-events' WorkerService: `runWorker(options)` leases the due jobs of one queue, runs their
 * events and records each outcome (delete on success, retry later, or move to the failed store). The
 * work is the batch loop's (claims, pools, heartbeats), one attempt's (what became of a job) and the
 * outcome recorder's (writing and announcing it); this class wires them and answers queries.
 */
export class WorkerService {
  /** Identifies this process's claims (host:pid:random). */
  readonly workerId = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  private logger: ILoggerService = new Logger(WorkerService.name);
  private eventService?: IEventService;
  private repository?: BatchQueueRepository;
  private workerCreator?: IWorkerCreator;
  private leaseMs = DEFAULT_LEASE_SECONDS * 1000;
  private heartbeatMs = (DEFAULT_LEASE_SECONDS * 1000) / HEARTBEATS_PER_LEASE;
  private concurrencyFor: (queueName: string) => number = () => DEFAULT_CONCURRENCY;
  private batchSizeFor: (queueName: string) => number | undefined = () => undefined;
  private knownQueues: () => string[] = () => [];
  private lifecycle?: WorkerLifecycle;
  private maxResultBytes?: number;
  private keepCompletedFor: (queueName: string) => RetentionOptions | false = () => false;
  private flowFor: (queueName: string) => QueueFlowSettings | undefined = () => undefined;
  private startGraceMs = DEFAULT_START_GRACE_MS;
  private readonly wakeUps = new WakeUps();
  private readonly loop = new BatchLoop(this.wakeUps);
  private readonly activeRuns = new Set<Promise<void>>();
  /** The repository as it was set, before the batch methods were added: this process's row is written through it. */
  private queueRepository?: IWorkerQueueRepository;
  /**
   * This process's row in nestjs_workers_processes: registered when the first runWorker() starts
   * (under WorkerModule the scheduler's first poll, with every queue it polls), refreshed every
   * heartbeatSeconds, removed by shutdown().
   */
  private readonly processes = new ProcessRegistry({
    workerId: this.workerId,
    repository: () => this.queueRepository,
    logger: () => this.logger,
    intervalMs: () => this.heartbeatMs,
    knownQueues: () => this.knownQueues(),
    concurrencyFor: (queueName) => this.concurrencyFor(queueName),
    running: () => this.loop.runningCount,
  });

  setLogger(logger: ILoggerService): void {
    this.logger = logger;
  }

  setEventService(eventService: IEventService): void {
    this.eventService = eventService;
  }

  /**
   * Accepts larascript-events' plain repository too (then without leases: one worker process per
   * queue, which is logged as a warning). A repository without the batch methods is given them here,
   * one row at a time, so recording outcomes never asks what the repository can do.
   */
  setWorkerRepository(repository: IWorkerRepository): void {
    let queueRepository;
    if (isQueueRepository(repository)) queueRepository = repository;
    else {
      this.logger.warn(messages.leaseLessRepository());
      queueRepository = new SeedRepositoryAdapter(repository);
    }
    this.queueRepository = queueRepository;
    this.repository = withBatchMethods(queueRepository, () => this.logger);
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
    if (settings.maxPayloadBytes !== undefined) this.maxResultBytes = settings.maxPayloadBytes;
    if (settings.keepCompletedFor) this.keepCompletedFor = settings.keepCompletedFor;
    if (settings.flowFor) this.flowFor = settings.flowFor;
    if (settings.startGraceMs !== undefined) {
      assertNumber('startGraceMs', settings.startGraceMs, 0, MAX_TIMER_SECONDS * 1000);
      this.startGraceMs = settings.startGraceMs;
    }
  }

  /**
   * Processes the due events of `options.queueName` and resolves with what happened. With `runOnce`
   * one pass over what is due at the start; otherwise passes until nothing is due.
   */
  async runWorker(options: TEventWorkerOptions): Promise<RunWorkerResult> {
    validateRunWorkerOptions(options);
    const { queueName } = options;
    const result: RunWorkerResult = { queueName, processed: 0, failed: 0, retried: 0, cancelled: 0 };
    if (this.loop.stopping) return result;
    const creator = this.resolveCreator(options.workerCreator);
    const repository = this.requireRepository();
    const eventService = this.requireEventService();
    const { logger, workerId, leaseMs, heartbeatMs } = this;
    const concurrency = options.concurrency ?? this.concurrencyFor(queueName);
    const batchSize = options.batchSize ?? this.batchSizeFor(queueName) ?? concurrency;
    this.processes.noteRun(queueName, concurrency);
    const recorder = new OutcomeRecorder(repository, queueName, logger, this.lifecycle, result);
    const run = this.loop.drain({
      // The queue's keepCompleted unless the run sets its own (an event class's wins over both).
      options:
        options.keepCompleted === undefined ? { ...options, keepCompleted: this.keepCompletedFor(queueName) } : options,
      creator,
      repository,
      eventService,
      logger,
      workerId,
      leaseMs,
      heartbeatMs,
      concurrency,
      batchSize,
      recorder,
      result,
      maxResultBytes: this.maxResultBytes,
      flow: claimFlowLimits(queueName, this.flowFor(queueName), eventService, this.startGraceMs),
    });
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
    if (!repository.getQueueStatistics) throw new WorkerError(messages.notProvided('getQueueStatistics'));
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
    if (!repository.cancelWorker) throw new WorkerError(messages.notProvided('cancelWorker'));
    // A waiting event removed by the cancel is kept as cancelled where a running one would be.
    const keep = (queueName: string, eventName: string): boolean =>
      keepsCompleted(this.keepCompletedFor(queueName), this.eventService?.getEventOptions(eventName)?.keepCompleted);
    const cancelled = await repository.cancelWorker(request, await repository.currentTime(), keep);
    if (!cancelled) return undefined;
    if (cancelled.wasRunning) {
      this.loop.abortCancelled(cancelled.id, cancelled.eventName);
    } else if (cancelled.attributes) {
      const { queueName, eventName, attributes } = cancelled;
      await this.lifecycle?.emit({ name: 'cancelled', queueName, eventName, attributes });
    }
    return cancelled;
  }

  /** Rows were committed to this queue (a PostgreSQL notification): its next claim goes straight to the rows. */
  noteWoken(queueName: string): void {
    this.wakeUps.note(queueName);
  }

  /** True while a wake-up of the queue has not been followed by a claim. */
  isWoken(queueName: string): boolean {
    return this.wakeUps.has(queueName);
  }

  /** True once shutdown() was called: runWorker() then claims nothing. */
  get isStopping(): boolean {
    return this.loop.stopping;
  }

  /**
   * Stops claiming, gives back at once the claimed jobs that never started (their attempt taken back,
   * whatever the grace), and waits up to `graceMs` for running events to finish. Events still running
   * after the grace period keep their lease, no longer renewed, until it expires; another worker then
   * runs them again, and that attempt counts. This process's row of the worker-process table is then
   * removed.
   */
  async shutdown(graceMs: number): Promise<void> {
    // Waits for the claims in flight, whatever the grace: what they took is given back next.
    await this.loop.stop();
    await this.loop.releaseUnstarted();
    try {
      if (this.activeRuns.size === 0) return;
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        Promise.allSettled([...this.activeRuns]).then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
      ]);
      clearTimeout(timer);
      if (!finished) {
        this.loop.stopHeartbeats();
        this.logger.warn(messages.shutdownGraceEnded(graceMs));
      }
    } finally {
      // Last, before the DataSource closes: the process is listed while its events drain.
      await this.processes.stop();
    }
  }

  private resolveCreator(creatorClass?: IWorkerCreatorConstructor): IWorkerCreator {
    if (this.workerCreator && (!creatorClass || this.workerCreator instanceof creatorClass)) return this.workerCreator;
    if (creatorClass) return new creatorClass();
    throw new WorkerNotConfiguredError('Worker creator', 'setWorkerCreator');
  }

  private requireRepository(): BatchQueueRepository {
    if (!this.repository) throw new WorkerNotConfiguredError('Worker repository', 'setWorkerRepository');
    return this.repository;
  }

  private requireEventService(): IEventService {
    if (!this.eventService) throw new WorkerNotConfiguredError('Event service', 'setEventService');
    return this.eventService;
  }
}
