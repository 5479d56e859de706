import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import type { AtomicWork, SqlStatement, WorkerDialect } from './dialects/worker-dialect.js';
import type { RawWorkerRow } from './worker-row.js';
import type { WorkerTables } from './worker-tables.js';

/**
 * The multi-statement changes of the queue tables, each one transaction (see AtomicWork): written
 * once, run by every dialect.
 */

/** INSERT of one row given as { column: value }; `escape` quotes column names for the dialect. */
export function insertRow(table: string, row: Record<string, unknown>, escape: (name: string) => string): SqlStatement {
  const columns = Object.keys(row);
  return {
    sql: `INSERT INTO ${table} (${columns.map(escape).join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
    parameters: Object.values(row),
  };
}

/** What became of a leased row whose last attempt failed. */
export type FailedMoveOutcome = 'moved' | 'cancelled' | 'lease-lost';

/**
 * Inserts many rows in multi-row INSERTs of at most `limits.maxParameters` bind parameters each and
 * returns their ids in the order of `rows` (from RETURNING, or from MySQL's first insert id).
 */
export function insertRows(
  table: string,
  rows: Record<string, unknown>[],
  escape: (name: string) => string,
  limits: Pick<WorkerDialect, 'maxParameters' | 'returnsIds' | 'returningIds' | 'arrayInsert'>,
): AtomicWork<string[]> {
  return function* () {
    // Rows built by one creator share their columns; a row with others widens the list.
    const first = Object.keys(rows[0] ?? {});
    const columns = rows.every((row) => Object.keys(row).length === first.length) ? first : [...new Set(rows.flatMap((row) => Object.keys(row)))];
    if (limits.arrayInsert) {
      const result = yield limits.arrayInsert(columns, rows);
      return inIdOrder(result.rows.map((row) => String(row.id)));
    }
    const perStatement = Math.max(1, Math.floor(limits.maxParameters / columns.length));
    const tuple = `(${columns.map(() => '?').join(', ')})`;
    const ids: string[] = [];
    for (let start = 0; start < rows.length; start += perStatement) {
      const chunk = rows.slice(start, start + perStatement);
      const result = yield {
        sql: limits.returningIds(`INSERT INTO ${table} (${columns.map(escape).join(', ')}) VALUES ${chunk.map(() => tuple).join(', ')}`),
        parameters: chunk.flatMap((row) => columns.map((column) => row[column] ?? null)),
      };
      if (limits.returnsIds) {
        ids.push(...inIdOrder(result.rows.map((row) => String(row.id))));
      } else {
        const first = BigInt(result.insertId ?? '0');
        chunk.forEach((_, index) => ids.push(String(first + BigInt(index))));
      }
    }
    return ids;
  };
}

/** One statement's ids come from one sequence in row order: ascending ids are the rows' order (decimal strings: by length, then text). */
function inIdOrder(ids: string[]): string[] {
  return ids.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Deletes a leased pending row and inserts its failed copy. A row cancelled while it ran is only
 * deleted ('cancelled'); when the lease token no longer matches (another worker holds the row now)
 * nothing changes ('lease-lost').
 */
export function moveToFailed(tables: WorkerTables, id: string, leaseToken: string, failedRow: SqlStatement): AtomicWork<FailedMoveOutcome> {
  return function* () {
    const removed = yield { sql: `DELETE FROM ${tables.pending} WHERE id = ? AND lease_token = ? AND deleted_at IS NULL`, parameters: [id, leaseToken] };
    if (removed.affected === 0) {
      const cancelled = yield removeCancelled(tables, id, leaseToken);
      return cancelled.affected === 0 ? 'lease-lost' : 'cancelled';
    }
    yield failedRow;
    return 'moved';
  };
}

/** Deletes a leased row that was cancelled while it ran (fenced by the lease token like every write of a worker). */
export function removeCancelled(tables: WorkerTables, id: string, leaseToken: string): SqlStatement {
  return { sql: `DELETE FROM ${tables.pending} WHERE id = ? AND lease_token = ? AND deleted_at IS NOT NULL`, parameters: [id, leaseToken] };
}

/** Which pending row a cancel takes: by id, or by queue and unique key. */
export type CancelRowTarget = { id: string } | { queueName: string; uniqueKey: string };

/**
 * Cancels one pending row: a waiting one (never leased, or its lease expired) is deleted; a running
 * one is soft-deleted and loses its unique key, so no worker claims it again, its worker learns of
 * it at its next heartbeat, and the key is free for a new dispatch. Resolves to the row as it was,
 * with `was_running`, or undefined when no such row is pending.
 */
export function cancelRow(tables: WorkerTables, target: CancelRowTarget, now: number, lockRowsClause: string): AtomicWork<RawWorkerRow | undefined> {
  return function* () {
    const byId = 'id' in target;
    const { rows } = yield {
      sql: `SELECT * FROM ${tables.pending} WHERE ${byId ? 'id = ?' : 'queue_name = ? AND unique_key = ?'} AND deleted_at IS NULL${lockRowsClause}`,
      parameters: byId ? [target.id] : [target.queueName, target.uniqueKey],
    };
    const [row] = rows;
    if (!row) return undefined;
    const running = row.lease_token !== null && row.lease_token !== undefined && Number(row.available_at) > now;
    yield running
      ? { sql: `UPDATE ${tables.pending} SET deleted_at = ?, unique_key = NULL, updated_at = ? WHERE id = ?`, parameters: [now, now, row.id] }
      : { sql: `DELETE FROM ${tables.pending} WHERE id = ?`, parameters: [row.id] };
    return { ...row, was_running: running };
  };
}

/** Which failed rows a retry takes: by id, or by queue and event name (all when neither is given). */
export interface FailedRowFilter {
  id?: string;
  queueName?: string;
  eventName?: string;
}

export function failedRowCondition(filter: FailedRowFilter): { where: string; parameters: unknown[] } {
  const conditions = ['deleted_at IS NULL'];
  const parameters: unknown[] = [];
  for (const [column, value] of [['id', filter.id], ['queue_name', filter.queueName], ['event_name', filter.eventName]] as const) {
    if (value === undefined) continue;
    conditions.push(`${column} = ?`);
    parameters.push(value);
  }
  return { where: conditions.join(' AND '), parameters };
}

/**
 * Puts failed rows back in line as new pending rows (attempts 0, no error, due now, same priority) and removes them
 * from the failed store in the same transaction. The rows are read with `lockRowsClause`, so two
 * retries of one row cannot both re-queue it. Returns how many rows were re-queued.
 */
export function requeueFailed(tables: WorkerTables, filter: FailedRowFilter, now: number, lockRowsClause: string): AtomicWork<number> {
  return function* () {
    const { where, parameters } = failedRowCondition(filter);
    const { rows } = yield { sql: `SELECT id FROM ${tables.failed} WHERE ${where} ORDER BY id${lockRowsClause}`, parameters };
    if (rows.length === 0) return 0;
    const ids = rows.map((row) => row.id);
    const idList = ids.map(() => '?').join(', ');
    yield {
      sql:
        // Without its unique key: a new event holding that key may be pending already, and the retry must not be lost to it.
        `INSERT INTO ${tables.pending} (queue_name, event_name, payload, attempts, retries, priority, error, created_at, updated_at, available_at) ` +
        `SELECT queue_name, event_name, payload, 0, retries, priority, NULL, ?, ?, ? FROM ${tables.failed} WHERE id IN (${idList}) ORDER BY id`,
      parameters: [now, now, now, ...ids],
    };
    yield { sql: `DELETE FROM ${tables.failed} WHERE id IN (${idList})`, parameters: ids };
    return ids.length;
  };
}

/**
 * Statistics of every queue with rows (or of `queueNames`) in one statement over both tables. A row
 * whose lease expired counts as due: any worker may claim it now.
 */
export function queueStatisticsStatement(tables: WorkerTables, queueNames: string[] | undefined, now: number): SqlStatement {
  const only = queueNames ? ` AND queue_name IN (${queueNames.map(() => '?').join(', ')})` : '';
  const names = queueNames ?? [];
  return {
    sql:
      // *_count aliases: DELAYED is a reserved word on MySQL/MariaDB.
      'SELECT queue_name, SUM(is_pending) AS pending_count, SUM(is_due) AS due_count, SUM(is_running) AS running_count, ' +
      'SUM(is_delayed) AS delayed_count, SUM(is_failed) AS failed_count, MIN(due_since) AS oldest_due_since FROM (' +
      'SELECT queue_name, 1 AS is_pending, CASE WHEN available_at <= ? THEN 1 ELSE 0 END AS is_due, ' +
      'CASE WHEN lease_token IS NOT NULL AND available_at > ? THEN 1 ELSE 0 END AS is_running, ' +
      'CASE WHEN lease_token IS NULL AND available_at > ? THEN 1 ELSE 0 END AS is_delayed, 0 AS is_failed, ' +
      `CASE WHEN available_at <= ? THEN available_at ELSE NULL END AS due_since FROM ${tables.pending} WHERE deleted_at IS NULL${only} ` +
      `UNION ALL SELECT queue_name, 0, 0, 0, 0, 1, NULL FROM ${tables.failed} WHERE deleted_at IS NULL${only}` +
      ') counted GROUP BY queue_name ORDER BY queue_name',
    parameters: [now, now, now, now, ...names, ...names],
  };
}

export function toQueueStatistics(row: RawWorkerRow, now: number): QueueStatistics {
  const oldestDueSince = row.oldest_due_since === null || row.oldest_due_since === undefined ? null : Number(row.oldest_due_since);
  return {
    queueName: String(row.queue_name),
    pending: Number(row.pending_count),
    due: Number(row.due_count),
    running: Number(row.running_count),
    delayed: Number(row.delayed_count),
    failed: Number(row.failed_count),
    oldestDueAgeMs: oldestDueSince === null ? null : Math.max(0, now - oldestDueSince),
  };
}

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
    const { rows } = yield { sql: `SELECT id FROM ${tables.pending} WHERE queue_name = ? AND unique_key = ?`, parameters: [held.queueName, held.uniqueKey] };
    return rows[0] === undefined ? undefined : String(rows[0].id);
  };
}
