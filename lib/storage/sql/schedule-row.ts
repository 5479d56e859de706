import type { SqlStatement } from './statement.js';

/** A recurring schedule's row in the slot table, read by name (does it exist yet?). */
export function scheduleRowStatement(schedules: string, name: string): SqlStatement {
  return { sql: `SELECT name FROM ${schedules} WHERE name = ?`, parameters: [name] };
}

/** A schedule's first row: last slot 0, so its first slot is dispatched. Of replicas racing, one insert wins. */
export function insertScheduleRowStatement(schedules: string, name: string, now: number): SqlStatement {
  return {
    sql: `INSERT INTO ${schedules} (name, last_slot_at, updated_at) VALUES (?, 0, ?)`,
    parameters: [name, now],
  };
}
