import type { DataSource } from 'typeorm';
import { dialectFor } from './dialects/dialect-for.js';
import { WAKEUP_CHANNEL } from './dialects/postgres.dialect.js';
import type { WorkerDialect } from './dialects/worker-dialect.js';
import { pausedQueuesStatement, queuePausedStatement, setQueuePaused, wakeQueueStatement } from './sql/queue-pause.js';
import type { WorkerTables } from './worker-tables.js';
import { workerTables } from './worker-tables.js';

/** A paused queue and when it was paused (the database's clock). */
export interface PausedQueueRow {
  queueName: string;
  pausedAt: Date;
}

/**
 * Each queue's shared state (the queues table, statements in sql/queue-pause): the paused flag that
 * every claim of every process checks, behind WorkerFlowService.
 */
export class QueueStateStore {
  private readonly dialect: WorkerDialect;
  private readonly tables: WorkerTables;

  constructor(dataSource: DataSource) {
    this.dialect = dialectFor(dataSource);
    this.tables = workerTables(dataSource);
  }

  /** Sets the flag; resolves once it is committed. */
  async setPaused(queueName: string, paused: boolean): Promise<void> {
    await this.dialect.atomically(setQueuePaused(this.tables.queues, queueName, paused, this.dialect));
  }

  /**
   * Wakes the idle workers of `queueName` in every process at once, where the database can announce
   * it (PostgreSQL NOTIFY, which the pollers LISTEN for); resolves to whether it could. Elsewhere the
   * workers find out at their next poll.
   */
  async wake(queueName: string): Promise<boolean> {
    if (!this.dialect.capabilities.canListen) return false;
    await this.dialect.query(wakeQueueStatement(WAKEUP_CHANNEL, queueName));
    return true;
  }

  async isPaused(queueName: string): Promise<boolean> {
    const [row] = await this.dialect.query(queuePausedStatement(this.tables.queues, queueName));
    return row !== undefined && Number(row.paused) === 1;
  }

  /** Every paused queue of the database, by name. */
  async pausedQueues(): Promise<PausedQueueRow[]> {
    const rows = await this.dialect.query(pausedQueuesStatement(this.tables.queues));
    return rows.map((row) => ({ queueName: String(row.queue_name), pausedAt: new Date(Number(row.paused_at)) }));
  }
}
