import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  Optional,
} from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { describeError } from './errors/describe-error.js';
import { EventService } from './dispatch/event.service.js';
import type { ILoggerService } from './interfaces/logger.interface.js';
import type { RunWorkerResult } from './interfaces/worker-options.interface.js';
import { WorkerService } from './processing/worker.service.js';
import { knownQueueNames, type ResolvedWorkerConfig } from './worker.config.js';
import { POLL_INTERVAL_PREFIX, WORKER_CONFIG, WORKER_DATA_SOURCE } from './worker.constants.js';
import { MAX_POLL_BACKOFF_MS } from './worker.defaults.js';
import type { DataSource } from 'typeorm';
import { type CommitWakeups, commitWakeupsFor } from './storage/storage-capabilities.js';
import { schedulerMessages } from './worker.messages.js';
import { WorkerStartup } from './worker-startup.js';

/**
 * Polls each queue through @nestjs/schedule intervals: started once the application has
 * bootstrapped, one run per queue at a time, backing off while the database fails, and stopped and
 * drained before the application's providers (and the DataSource) shut down.
 */
@Injectable()
export class WorkerScheduler implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger: ILoggerService;
  private readonly running = new Set<string>();
  private readonly failures = new Map<string, { count: number; resumeAt: number }>();
  private readonly intervalNames: string[] = [];
  private readonly schedulerRegistry: SchedulerRegistry;
  /** Queues woken while a run of theirs was under way: polled again as soon as it ends. */
  private readonly wokenWhileRunning = new Set<string>();
  private wakeups?: CommitWakeups;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: ResolvedWorkerConfig,
    @Inject(WORKER_DATA_SOURCE) private readonly dataSource: DataSource,
    private readonly workerService: WorkerService,
    private readonly eventService: EventService,
    private readonly startup: WorkerStartup,
    // The application's registry when it imports ScheduleModule.forRoot(). Importing forRoot() here
    // instead would start a second ScheduleModule and fire every @Cron() of the app twice.
    @Optional() schedulerRegistry?: SchedulerRegistry,
  ) {
    this.schedulerRegistry = schedulerRegistry ?? new SchedulerRegistry();
    this.logger = config.logger ?? new Logger(WorkerScheduler.name);
  }

  onApplicationBootstrap(): Promise<void> {
    return this.startup.step(() => this.start());
  }

  private async start(): Promise<void> {
    const events = this.eventService.getRegisteredEvents();
    this.logger.debug?.(schedulerMessages.registeredEvents(events));
    // Found now rather than at the first execution, which would fail and retry for nothing.
    for (const problem of this.eventService.checkEventDependencies()) {
      this.logger.warn(schedulerMessages.unresolvedDependency(problem.message));
    }
    if (!this.config.autoStart) return;
    // Should a later step fail (the PostgreSQL listener, an interval name), nothing keeps polling.
    this.startup.opened(() => this.beforeApplicationShutdown());
    const queueNames = this.queueNames();
    for (const queueName of queueNames) {
      const name = this.freeIntervalName(POLL_INTERVAL_PREFIX + queueName);
      const handle = setInterval(() => void this.poll(queueName), this.config.queueOptions(queueName).pollIntervalMs);
      try {
        this.schedulerRegistry.addInterval(name, handle);
      } catch (error) {
        clearInterval(handle);
        throw error;
      }
      this.intervalNames.push(name);
      void this.poll(queueName);
    }
    if (queueNames.length > 0) this.logger.log(schedulerMessages.polling(queueNames));
    if (queueNames.length > 0 && this.config.listen) this.wakeups = commitWakeupsFor(this.dataSource, this.logger);
    if (this.wakeups) {
      await this.wakeups.start({
        wake: (queueName) => this.wake(queueName),
        resumed: () => queueNames.forEach((queueName) => this.wake(queueName)),
      });
    }
  }

  /**
   * A queue had rows committed (PostgreSQL NOTIFY): poll it now. Notifications that arrive while its
   * run is under way fold into one more poll right after it, so a burst costs one extra poll.
   */
  wake(queueName: string): void {
    if (!this.intervalNames.length || !this.queueNames().includes(queueName)) return;
    this.workerService.noteWoken(queueName);
    if (this.running.has(queueName)) {
      this.wokenWhileRunning.add(queueName);
      return;
    }
    void this.poll(queueName);
  }

  async beforeApplicationShutdown(): Promise<void> {
    // Before the DataSource closes: the listener holds one of its pool's connections.
    await this.wakeups?.stop();
    // @nestjs/schedule may already have cleared every interval in its own shutdown hook.
    for (const name of this.intervalNames.splice(0)) {
      if (this.schedulerRegistry.doesExist('interval', name)) this.schedulerRegistry.deleteInterval(name);
    }
    await this.workerService.shutdown(this.config.shutdownGraceSeconds * 1000);
  }

  /** The queue's interval name, suffixed when another WorkerModule of this app already polls that queue. */
  private freeIntervalName(base: string): string {
    let name = base;
    for (let instance = 2; this.schedulerRegistry.doesExist('interval', name); instance++) name = `${base}#${instance}`;
    return name;
  }

  queueNames(): string[] {
    return knownQueueNames(this.config, this.eventService);
  }

  /** One poll of a queue; skipped while the previous one runs, while backing off, or once stopping. */
  async poll(queueName: string): Promise<RunWorkerResult | undefined> {
    const backoff = this.failures.get(queueName);
    if (this.running.has(queueName) || this.workerService.isStopping || (backoff && Date.now() < backoff.resumeAt)) {
      return undefined;
    }
    this.running.add(queueName);
    // keepFailed is the pruner's, not the run's; the flow-control limits reach the run through flowFor.
    const { pollIntervalMs, keepFailed, globalConcurrency, keyConcurrency, rateLimit, keyRateLimit, ...queueOptions } =
      this.config.queueOptions(queueName);
    try {
      const result = await this.workerService.runWorker({ queueName, ...queueOptions });
      if (backoff) this.logger.log(schedulerMessages.pollingAgain(queueName, backoff.count));
      this.failures.delete(queueName);
      return result;
    } catch (error) {
      const count = (backoff?.count ?? 0) + 1;
      const pauseMs = Math.min(pollIntervalMs * 2 ** count, MAX_POLL_BACKOFF_MS);
      this.failures.set(queueName, { count, resumeAt: Date.now() + pauseMs });
      this.logger.error(schedulerMessages.pollFailed(queueName, count, pauseMs, describeError(error)));
      return undefined;
    } finally {
      this.running.delete(queueName);
      // Unless the run itself claimed what the notification announced.
      if (
        this.wokenWhileRunning.delete(queueName) &&
        this.workerService.isWoken(queueName) &&
        !this.workerService.isStopping
      )
        void this.poll(queueName);
    }
  }
}
