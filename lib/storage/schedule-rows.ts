import type { DataSource } from 'typeorm';
import { dialectFor } from './dialects/dialect-for.js';
import { insertScheduleRowStatement, scheduleRowStatement } from './sql/schedule-row.js';
import { workerTables } from './worker-tables.js';

/**
 * A schedule's row in the slot table (last slot 0), unless it exists; of replicas racing to create
 * it, one insert wins.
 */
export async function ensureScheduleRow(dataSource: DataSource, name: string): Promise<void> {
  const dialect = dialectFor(dataSource);
  const { schedules } = workerTables(dataSource);
  const exists = async (): Promise<boolean> => (await dialect.query(scheduleRowStatement(schedules, name))).length > 0;
  if (await exists()) return;
  try {
    await dialect.query(insertScheduleRowStatement(schedules, name, Date.now()));
  } catch (error) {
    if (!(await exists())) throw error;
  }
}
