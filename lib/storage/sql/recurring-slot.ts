import type { WorkerTables } from '../worker-tables.js';
import type { AtomicWork, SqlStatement } from './statement.js';

/**
 * A recurring event's slot: moves the schedule's last_slot_at forward to `slotAt` and inserts the
 * slot's row in the same transaction, so among replicas racing for a slot exactly one dispatches
 * it, even after that row has run. Resolves to the new row's id, or undefined when the slot was
 * already dispatched (or a later one).
 */
export function dispatchRecurringSlot(
  tables: WorkerTables,
  slot: { name: string; slotAt: number; now: number },
  row: SqlStatement,
  held: { queueName: string; uniqueKey: string },
): AtomicWork<string | undefined> {
  return function* () {
    const claimed = yield {
      sql: `UPDATE ${tables.schedules} SET last_slot_at = ?, updated_at = ? WHERE name = ? AND last_slot_at < ?`,
      parameters: [slot.slotAt, slot.now, slot.name, slot.slotAt],
    };
    if (claimed.affected === 0) return undefined;
    yield row;
    const { rows } = yield {
      sql: `SELECT id FROM ${tables.pending} WHERE queue_name = ? AND unique_key = ?`,
      parameters: [held.queueName, held.uniqueKey],
    };
    return rows[0] === undefined ? undefined : String(rows[0].id);
  };
}
