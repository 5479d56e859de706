import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { assertStoredName } from '../common/worker-options.validation.js';
import { UnknownQueueError } from '../errors/flow-control.error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import { type PausedQueueRow, QueueStateStore } from '../storage/queue-state-store.js';
import { flowControlMessages as messages } from '../worker.messages.js';

/** A paused queue and when it was paused (the database's clock). */
export type PausedQueue = PausedQueueRow;

/** What WorkerFlowService needs besides the DataSource (WorkerModule wires it). */
export interface WorkerFlowSettings {
  /** The queues this module knows: its `queues` options and the queues of its registered event classes. */
  knownQueues: () => string[];
  logger?: ILoggerService;
  /** Polls a queue of this process now, if it polls it (a resume's local wake-up). */
  wakeLocally?: (queueName: string) => void;
}

/**
 * Pause and resume a queue for every process and machine on the database. The flag is a row of the
 * queues table, which every claim checks: once pauseQueue() resolves, no claim that starts takes an
 * event of the queue, in any process (events already running finish), and it stays paused across
 * restarts until resumeQueue(). Dispatch is unaffected: new events wait in line.
 */
export class WorkerFlowService {
  private readonly store: QueueStateStore;
  private readonly logger: ILoggerService;

  constructor(
    dataSource: DataSource,
    private readonly settings: WorkerFlowSettings,
  ) {
    this.store = new QueueStateStore(dataSource);
    this.logger = settings.logger ?? new Logger(WorkerFlowService.name);
  }

  /** Pauses `queueName` for every process; resolves once the pause is committed. Pausing twice is harmless. */
  async pauseQueue(queueName: string): Promise<void> {
    this.assertKnown(queueName);
    await this.store.setPaused(queueName, true);
    this.logger.log(messages.paused(queueName));
  }

  /**
   * Resumes `queueName`: idle workers are woken at once where the database can announce it
   * (PostgreSQL NOTIFY), else they claim at their next poll; this process's own pollers are woken at
   * once everywhere. Resuming a queue that is not paused changes nothing.
   */
  async resumeQueue(queueName: string): Promise<void> {
    this.assertKnown(queueName);
    await this.store.setPaused(queueName, false);
    // After the commit, so that a woken worker's claim sees the queue resumed.
    const announced = await this.store.wake(queueName);
    this.settings.wakeLocally?.(queueName);
    this.logger.log(messages.resumed(queueName, announced));
  }

  /** Whether `queueName` is paused (a queue never paused is not). Any queue name may be asked about. */
  async isPaused(queueName: string): Promise<boolean> {
    assertStoredName('queueName', queueName);
    return this.store.isPaused(queueName);
  }

  /** The queues paused on this database (by any application sharing it), by name. */
  pausedQueues(): Promise<PausedQueue[]> {
    return this.store.pausedQueues();
  }

  private assertKnown(queueName: string): void {
    assertStoredName('queueName', queueName);
    const known = this.settings.knownQueues();
    if (!known.includes(queueName)) throw new UnknownQueueError(queueName, known);
  }
}
