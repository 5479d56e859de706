import type { StoredRow } from '../../interfaces/worker-creator.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import { insertedIdOf, type PendingInserts } from './insert.js';
import type { AtomicWork, SqlSpelling, SqlStatement } from './statement.js';

/** What a debounced dispatch needs of a dialect. */
export type DebounceSpelling = Pick<SqlSpelling, 'nowSql' | 'lockRowsClause'> & PendingInserts;

/** The columns a debounced dispatch replaces on a waiting holder: what the new dispatch says about the event. */
export const DEBOUNCE_REPLACED_COLUMNS = [
  'event_name',
  'payload',
  'retries',
  'priority',
  'concurrency_key',
  'available_at',
  'updated_at',
] as const;

/** How often it looks again when the key changed hands between its read and its insert. */
const DEBOUNCE_ATTEMPTS = 5;

/**
 * A debounced dispatch (uniqueKey + debounceSeconds), one transaction. The row holding the key is
 * read and locked first:
 * - it waits (no live lease): it becomes the new dispatch (`replaced`: payload, event, retries,
 *   priority, concurrency key, due time = now + debounce, set by the caller) with a fresh start
 *   (attempts 0, no error, no progress), and the id stays. A lease that expired is cleared with it,
 *   so the worker that held it (slow, partitioned) can change nothing of the new event.
 * - it runs (live lease): it is detached (unique_key = NULL, its lease left alone: it finishes as it
 *   is) and the new event inserted (`row`), as graphile-worker's replace mode does;
 * - none: the new event is inserted.
 * Concurrent debounces of one key: the holder's row lock orders them, and an insert that meets a
 * holder another transaction just inserted waits for it, inserts nothing, and reads again, so it
 * replaces that one: one waiting event is left, with the payload of the last to commit.
 * Resolves to undefined when the key kept changing hands (the caller reports it).
 */
export function debouncedInsert(
  tables: WorkerTables,
  spelling: DebounceSpelling,
  row: SqlStatement,
  replaced: Record<(typeof DEBOUNCE_REPLACED_COLUMNS)[number], unknown>,
  key: { queueName: string; uniqueKey: string },
): AtomicWork<StoredRow | undefined> {
  const { nowSql, lockRowsClause } = spelling;
  return function* () {
    for (let attempt = 1; attempt <= DEBOUNCE_ATTEMPTS; attempt++) {
      const { rows: holders } = yield {
        sql:
          `SELECT id, CASE WHEN lease_token IS NOT NULL AND lease_expires_at > ${nowSql} THEN 1 ELSE 0 END ` +
          `AS running FROM ${tables.pending} WHERE queue_name = ? AND unique_key = ?${lockRowsClause}`,
        parameters: [key.queueName, key.uniqueKey],
      };
      const [holder] = holders;
      if (holder && Number(holder.running) === 0) {
        yield {
          sql:
            `UPDATE ${tables.pending} SET ${DEBOUNCE_REPLACED_COLUMNS.map((column) => `${column} = ?`).join(', ')}, ` +
            'attempts = 0, error = NULL, progress = NULL, locked_by = NULL, lease_token = NULL, ' +
            'lease_expires_at = NULL WHERE id = ?',
          parameters: [...DEBOUNCE_REPLACED_COLUMNS.map((column) => replaced[column] ?? null), holder.id],
        };
        return { id: String(holder.id), inserted: false };
      }
      if (holder) {
        yield { sql: `UPDATE ${tables.pending} SET unique_key = NULL WHERE id = ?`, parameters: [holder.id] };
      }
      const id = insertedIdOf(yield spelling.pendingInsertUnlessTaken(row), spelling);
      if (id !== undefined) return { id, inserted: true };
    }
    return undefined;
  };
}
