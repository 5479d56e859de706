import type { FailedMoveOutcome } from '../../interfaces/worker-repository.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import { multiRowInserts } from './insert.js';
import { byLeaseToken, deleteLeasedRows, type LeasedRow, lockLeasedRows } from './leased-rows.js';
import type { AtomicWork, SqlSpelling } from './statement.js';

/** A failed attempt whose row moves to the failed store: `failedRow` is its copy there ({ column: value }). */
export interface FailedRow extends LeasedRow {
  failedRow: Record<string, unknown>;
}

/**
 * Moves the rows of exhausted attempts to the failed store in one transaction: per lease token, the
 * rows still held are read and locked and deleted together with those cancelled while they ran
 * ('cancelled'); then the failed copies of the held rows ('moved') are inserted in multi-row INSERTs.
 * A row another worker holds now is not touched ('lease-lost'). If any statement fails nothing
 * changes: a row is never in both tables, nor in neither.
 */
export function moveLeasedRowsToFailed(
  tables: WorkerTables,
  rows: FailedRow[],
  escape: (name: string) => string,
  spelling: Pick<SqlSpelling, 'maxParameters' | 'lockRowsClause'>,
): AtomicWork<Map<string, FailedMoveOutcome>> {
  return function* () {
    const outcomes = new Map<string, FailedMoveOutcome>();
    for (const [leaseToken, ids] of byLeaseToken(rows)) {
      const { held, cancelled } = yield* lockLeasedRows(tables, leaseToken, ids, spelling);
      yield* deleteLeasedRows(tables, leaseToken, [...held, ...cancelled], spelling.maxParameters);
      for (const id of ids) outcomes.set(id, held.has(id) ? 'moved' : cancelled.has(id) ? 'cancelled' : 'lease-lost');
    }
    const moved = rows.filter((row) => outcomes.get(row.id) === 'moved').map((row) => row.failedRow);
    if (moved.length > 0)
      for (const { statement } of multiRowInserts(tables.failed, moved, escape, spelling.maxParameters))
        yield statement;
    return outcomes;
  };
}
