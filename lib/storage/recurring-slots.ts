import type { DataSource } from 'typeorm';
import { WorkerError } from '../errors/worker.error.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import { rowStoreMessages } from '../worker.messages.js';
import { dialectFor } from './dialects/dialect-for.js';
import { ensureScheduleRow } from './schedule-rows.js';
import { TypeOrmWorkerModel } from './typeorm-worker.model.js';
import { insertRow } from './sql/insert.js';
import { dispatchRecurringSlot } from './sql/recurring-slot.js';
import { workerTables } from './worker-tables.js';

/** One slot of a recurring event: its schedule's name and the slot's instant. */
export interface RecurringSlot {
  name: string;
  slotAt: Date;
}

/**
 * The recurring events' slot table and the slot transaction, the SQL behind RecurringEventScheduler
 * (which checks its input before calling these).
 */
export class RecurringSlotStore {
  constructor(private readonly dataSource: DataSource) {}

  /** The schedule's row in the slot table; two replicas creating it at once is fine, one insert wins. */
  ensureSchedule(name: string): Promise<void> {
    return ensureScheduleRow(this.dataSource, name);
  }

  /**
   * Moves the schedule's last slot forward to `slot` and inserts the slot's row (`model`, built by
   * the TypeORM creator with the slot's unique key) in one transaction. Resolves to the row id when
   * this call dispatched the slot, to undefined when another (or a later slot) had.
   */
  dispatch(slot: RecurringSlot, model: IWorkerModel): Promise<string | undefined> {
    if (!(model instanceof TypeOrmWorkerModel)) throw new WorkerError(rowStoreMessages.notATypeOrmModel);
    const attributes = model.getWorkerData();
    if (!attributes?.uniqueKey) throw new WorkerError(rowStoreMessages.slotRowWithoutKey);
    const tables = workerTables(this.dataSource);
    const row = insertRow(tables.pending, model.databaseRow(), (column) => this.dataSource.driver.escape(column));
    return dialectFor(this.dataSource).atomically(
      dispatchRecurringSlot(tables, { name: slot.name, slotAt: slot.slotAt.getTime(), now: Date.now() }, row, {
        queueName: attributes.queueName,
        uniqueKey: attributes.uniqueKey,
      }),
    );
  }
}
