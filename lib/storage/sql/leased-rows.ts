import { WorkerError } from '../../errors/worker.error.js';
import { notAnInteger } from '../../worker.messages.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { WorkerTables } from '../worker-tables.js';
import { compareIds } from './claim.js';
import { chunked, placeholders, type SqlSpelling, type SqlStatement, type StatementResult } from './statement.js';

/** A claimed row, as its lease fences writes to it. */
export interface LeasedRow {
  id: string;
  leaseToken: string;
}

/**
 * Ids per lease token (a claim's rows share one), ascending, so concurrent transactions lock rows in
 * one order.
 */
export function byLeaseToken(rows: LeasedRow[]): Map<string, string[]> {
  const byLease = new Map<string, Set<string>>();
  for (const { id, leaseToken } of rows) {
    let ids = byLease.get(leaseToken);
    if (!ids) byLease.set(leaseToken, (ids = new Set()));
    ids.add(id);
  }
  return new Map([...byLease].map(([leaseToken, ids]) => [leaseToken, [...ids].sort(compareIds)]));
}

/**
 * Which of `ids` this lease still holds, read with `lockRowsClause` so they stay so until the
 * transaction ends: `held` rows are live, `cancelled` ones were cancelled while they ran; any other
 * id is gone or leased to another worker. `columns` are read too (`rows`, by id), for the writes
 * that copy a row elsewhere (the failed store).
 */
export function* lockLeasedRows(
  tables: WorkerTables,
  leaseToken: string,
  ids: string[],
  spelling: Pick<SqlSpelling, 'maxParameters' | 'lockRowsClause'>,
  columns: readonly string[] = [],
): Generator<SqlStatement, LockedRows, StatementResult> {
  const held = new Set<string>();
  const cancelled = new Set<string>();
  const read = new Map<string, RawWorkerRow>();
  const selected = ['id', 'deleted_at', ...columns].join(', ');
  for (const chunk of chunked(ids, spelling.maxParameters - 1)) {
    const { rows } = yield {
      sql:
        `SELECT ${selected} FROM ${tables.pending} ` +
        `WHERE lease_token = ? AND id IN (${placeholders(chunk.length)})${spelling.lockRowsClause}`,
      parameters: [leaseToken, ...chunk],
    };
    for (const row of rows) {
      const id = String(row.id);
      (row.deleted_at === null || row.deleted_at === undefined ? held : cancelled).add(id);
      if (columns.length > 0) read.set(id, row);
    }
  }
  return { held, cancelled, rows: read };
}

/** What lockLeasedRows() found: live rows, rows cancelled while they ran, and the columns it read of both. */
export interface LockedRows {
  held: Set<string>;
  cancelled: Set<string>;
  rows: Map<string, RawWorkerRow>;
}

/** DELETE of leased rows, fenced by their lease token like every write of a worker. */
export function deleteLeasedStatement(pending: string, leaseToken: string, ids: string[]): SqlStatement {
  return {
    sql: `DELETE FROM ${pending} WHERE lease_token = ? AND id IN (${placeholders(ids.length)})`,
    parameters: [leaseToken, ...ids],
  };
}

/** Deletes leased rows (deleteLeasedStatement), as many statements as maxParameters needs. */
export function* deleteLeasedRows(
  tables: WorkerTables,
  leaseToken: string,
  ids: string[],
  maxParameters: number,
): Generator<SqlStatement, void, StatementResult> {
  for (const chunk of chunked(ids, maxParameters - 1)) yield deleteLeasedStatement(tables.pending, leaseToken, chunk);
}

/** An integer to inline into SQL, refused unless it is one (a row id as decimal text, or a safe integer). */
export function integerLiteral(value: string | number, what: string): string {
  if (typeof value === 'number' ? Number.isSafeInteger(value) : /^\d+$/.test(value)) return String(value);
  throw new WorkerError(notAnInteger(what, value));
}
