import type { DataSource } from 'typeorm';
import { dialectFor } from './dialects/dialect-for.js';
import { workerTables } from './worker-tables.js';

/** A schedule's row in the slot table (last slot 0), unless it exists; of replicas racing to create it, one insert wins. */
export async function ensureScheduleRow(dataSource: DataSource, name: string): Promise<void> {
  const dialect = dialectFor(dataSource);
  const { schedules } = workerTables(dataSource);
  const exists = async (): Promise<boolean> =>
    (await dialect.query({ sql: `SELECT name FROM ${schedules} WHERE name = ?`, parameters: [name] })).length > 0;
  if (await exists()) return;
  try {
    await dialect.query({
      sql: `INSERT INTO ${schedules} (name, last_slot_at, updated_at) VALUES (?, 0, ?)`,
      parameters: [name, Date.now()],
    });
  } catch (error) {
    if (!(await exists())) throw error;
  }
}
