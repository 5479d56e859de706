import type { StoredRow } from '../../interfaces/worker-creator.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import { insertedIdOf, type PendingInserts } from './insert.js';
import type { AtomicWork, SqlSpelling, SqlStatement } from './statement.js';
import type { AddingUpsertSpelling } from './throughput.js';

/** What a throttled dispatch needs of a dialect. */
export type ThrottleSpelling = Pick<SqlSpelling, 'nowSql' | 'lockRowsClause'> & AddingUpsertSpelling & PendingInserts;

/** How often the insert tries again when the row holding the key finished between the insert and the lookup. */
const THROTTLE_INSERT_ATTEMPTS = 5;

/**
 * A throttled dispatch (uniqueKey + throttleSeconds), one transaction: the first dispatch of the
 * key in a period stores the event (`row`, an insertRow() of the pending table) and opens the
 * window (the throttles row: until_at = the database's now + periodMs, job_id = the new id); a later
 * one in the period stores nothing and resolves to that job id, whether the event waits, runs or
 * has finished. After the period the next dispatch stores a new event, unless the key is still held
 * by a pending or running event (the unique key still holds): it then resolves to that one, and no
 * window opens, since nothing was dispatched.
 *
 * Exactly one event per period however many processes dispatch at once: the window row is created
 * if missing and locked by one upsert (it adds 0 to until_at, the upsert spelling every dialect
 * has), which waits for a concurrent creator's commit. Every throttled dispatch of the key then
 * runs after the one before it, and reads its window as that one committed it. Resolves to undefined
 * when the key kept being released and taken (the caller reports it).
 */
export function throttledInsert(
  tables: WorkerTables,
  spelling: ThrottleSpelling,
  row: SqlStatement,
  key: { queueName: string; uniqueKey: string; periodMs: number },
): AtomicWork<StoredRow | undefined> {
  const { queueName, uniqueKey, periodMs } = key;
  const whereKey = 'WHERE queue_name = ? AND unique_key = ?';
  return function* () {
    yield {
      sql: spelling.addingUpsert(
        tables.throttles,
        ['queue_name', 'unique_key', 'job_id', 'until_at'],
        '(?, ?, ?, ?)',
        ['queue_name', 'unique_key'],
        ['until_at'],
      ),
      // A new window row is closed (until_at 0): this dispatch opens it below.
      parameters: [queueName, uniqueKey, 0, 0],
    };
    const { rows: windows } = yield {
      sql:
        `SELECT job_id, CASE WHEN until_at > ${spelling.nowSql} THEN 1 ELSE 0 END AS open ` +
        `FROM ${tables.throttles} ${whereKey}${spelling.lockRowsClause}`,
      parameters: [queueName, uniqueKey],
    };
    const [window] = windows;
    if (window && Number(window.open) === 1) return { id: String(window.job_id), inserted: false };
    for (let attempt = 1; attempt <= THROTTLE_INSERT_ATTEMPTS; attempt++) {
      const id = insertedIdOf(yield spelling.pendingInsertUnlessTaken(row), spelling);
      if (id !== undefined) {
        yield {
          sql: `UPDATE ${tables.throttles} SET job_id = ?, until_at = ${spelling.nowSql} + ? ${whereKey}`,
          parameters: [id, periodMs, queueName, uniqueKey],
        };
        return { id, inserted: true };
      }
      // A locking read: in a caller's REPEATABLE READ transaction (MySQL's default) a plain one would
      // read its snapshot, which may predate the holder.
      const { rows: holders } = yield {
        sql: `SELECT id FROM ${tables.pending} ${whereKey}${spelling.lockRowsClause}`,
        parameters: [queueName, uniqueKey],
      };
      if (holders[0] !== undefined) return { id: String(holders[0].id), inserted: false };
    }
    return undefined;
  };
}
