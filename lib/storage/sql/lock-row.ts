import { WorkerError } from '../../errors/worker.error.js';
import { flowClaimMessages } from '../../worker.messages.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { SqlStatement, StatementResult } from './statement.js';

/** A lock row to take: its locking read, the upsert that creates it, and what names it in an error. */
export interface LockRow {
  lock: SqlStatement;
  ensure: SqlStatement;
  table: string;
  name: string;
}

/**
 * Locks a lock row (a queue's, a rate limiter's), creating it first when missing: a row is created
 * on its first use, and two first uses racing both go on (the upsert), then lock it. Resolves to
 * what the locking read returned; a row still missing after its upsert is an error.
 */
export function* lockRow({
  lock,
  ensure,
  table,
  name,
}: LockRow): Generator<SqlStatement, RawWorkerRow, StatementResult> {
  let { rows } = yield lock;
  if (rows.length === 0) {
    yield ensure;
    ({ rows } = yield lock);
  }
  const [row] = rows;
  if (!row) throw new WorkerError(flowClaimMessages.lockRowMissing(table, name));
  return row;
}
