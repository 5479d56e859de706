import { hostname } from 'node:os';
import { describeError } from '../errors/describe-error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { IWorkerQueueRepository, WorkerProcessState } from '../interfaces/worker-repository.interface.js';
import { processRegistryMessages as messages } from '../worker.messages.js';

/** What the registry asks its WorkerService each beat; read afresh, since setters may change them. */
export interface ProcessRegistrySettings {
  workerId: string;
  repository(): IWorkerQueueRepository | undefined;
  logger(): ILoggerService;
  intervalMs(): number;
  /** Queues the service polls without having run them yet (WorkerModule: every polled queue). */
  knownQueues(): string[];
  concurrencyFor(queueName: string): number;
  /** Events of this process running now. */
  running(): number;
}

/**
 * This process's row in the worker-process table: saved when the first runWorker() starts, again
 * every heartbeat interval (queues, concurrency, running count, heartbeat on the database's clock),
 * and removed on graceful stop. Writes go one after the other, never two at once; one that fails is
 * logged and the next beat tries again: listing a process never stops its work.
 */
export class ProcessRegistry {
  /** The concurrency each queue was run with (runWorker's own, or the queue's). */
  private readonly queues = new Map<string, number>();
  private startedAt?: number;
  private timer?: NodeJS.Timeout;
  private writes: Promise<void> = Promise.resolve();
  private stopped = false;
  /** A beat's write has not finished: the next beat is skipped rather than queued behind it. */
  private beating = false;

  constructor(private readonly settings: ProcessRegistrySettings) {}

  /** A run of `queueName` starts: registers the process on the first one, and tells a new queue at once. */
  noteRun(queueName: string, concurrency: number): void {
    if (this.stopped || !this.settings.repository()?.saveWorkerProcess) return;
    const known = this.queues.get(queueName);
    this.queues.set(queueName, concurrency);
    if (known === concurrency) return;
    void this.save();
    if (!this.timer) {
      this.timer = setInterval(() => this.beat(), this.settings.intervalMs());
      // The row is a listing, not work: it never keeps the process alive.
      this.timer.unref();
    }
  }

  /** Stops the beats and removes the row, once the writes in flight are done. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.timer);
    const registered = this.timer !== undefined;
    this.timer = undefined;
    if (!registered) return;
    await this.enqueue(async (repository) => {
      await repository.removeWorkerProcess?.(this.settings.workerId);
    }, messages.notRemoved);
  }

  private beat(): void {
    if (this.beating) return;
    this.beating = true;
    void this.save().finally(() => (this.beating = false));
  }

  private save(): Promise<void> {
    return this.enqueue(async (repository) => {
      if (this.stopped || !repository.saveWorkerProcess) return;
      // On the database's clock, like heartbeat_at (the repository's estimate of it, without a query).
      this.startedAt ??= (await repository.currentTime?.()) ?? Date.now();
      await repository.saveWorkerProcess(this.state(this.startedAt));
    }, messages.notSaved);
  }

  private state(startedAt: number): WorkerProcessState {
    const { workerId, knownQueues, concurrencyFor, running } = this.settings;
    const queues = new Map(this.queues);
    for (const queueName of knownQueues()) if (!queues.has(queueName)) queues.set(queueName, concurrencyFor(queueName));
    const names = [...queues.keys()].sort();
    return {
      id: workerId,
      host: hostname(),
      pid: process.pid,
      queues: names,
      concurrency: names.reduce((sum, name) => sum + (queues.get(name) ?? 0), 0),
      running: running(),
      startedAt,
    };
  }

  /** Runs `write` after the writes before it; a failure is logged with `message`, never thrown. */
  private enqueue(
    write: (repository: IWorkerQueueRepository) => Promise<void>,
    message: (workerId: string, error: string) => string,
  ): Promise<void> {
    this.writes = this.writes.then(async () => {
      const repository = this.settings.repository();
      if (!repository) return;
      try {
        await write(repository);
      } catch (error) {
        this.settings.logger().warn(message(this.settings.workerId, describeError(error)));
      }
    });
    return this.writes;
  }
}
