import { WorkerError } from '../errors/worker.error.js';
import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import type { FailedMoveOutcome, RetryOutcome } from '../interfaces/worker-repository.interface.js';
import type { AtomicWork, SqlStatement, StatementResult, WorkerDialect } from './dialects/worker-dialect.js';
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

/**
 * Inserts many rows in multi-row INSERTs (see multiRowInserts), or one array insert where the dialect
 * has it, and returns their ids in the order of `rows` (from RETURNING, or from MySQL's first insert id).
 */
export function insertRows(
  table: string,
  rows: Record<string, unknown>[],
  escape: (name: string) => string,
  limits: Pick<WorkerDialect, 'maxParameters' | 'returnsIds' | 'returningIds' | 'arrayInsert'>,
): AtomicWork<string[]> {
  return function* () {
    if (limits.arrayInsert) {
      const result = yield limits.arrayInsert(columnsOf(rows), rows);
      return inIdOrder(result.rows.map((row) => String(row.id)));
    }
    const ids: string[] = [];
    for (const { statement, size } of multiRowInserts(table, rows, escape, limits.maxParameters)) {
      const result = yield { ...statement, sql: limits.returningIds(statement.sql) };
      if (limits.returnsIds) {
        ids.push(...inIdOrder(result.rows.map((row) => String(row.id))));
      } else {
        const first = BigInt(result.insertId ?? '0');
        for (let index = 0; index < size; index++) ids.push(String(first + BigInt(index)));
      }
    }
    return ids;
  };
}

/**
 * Text (in characters) of the string values one multi-row INSERT carries at most: mysql2 inlines the
 * parameters, and the statement must stay below max_allowed_packet (16 MiB by default on MariaDB)
 * even with long payloads or stack traces and 4-byte characters.
 */
const MAX_INSERT_TEXT = 2_000_000;

/**
 * The multi-row INSERT … VALUES statements for `rows`, in order, each within `maxParameters` bind
 * parameters and MAX_INSERT_TEXT characters of text (a longer single row still gets its own
 * statement); `size` is how many rows each carries.
 */
export function multiRowInserts(
  table: string,
  rows: Record<string, unknown>[],
  escape: (name: string) => string,
  maxParameters: number,
): { statement: SqlStatement; size: number }[] {
  const columns = columnsOf(rows);
  const perStatement = Math.max(1, Math.floor(maxParameters / columns.length));
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  const head = `INSERT INTO ${table} (${columns.map(escape).join(', ')}) VALUES `;
  const statements: { statement: SqlStatement; size: number }[] = [];
  let parameters: unknown[] = [];
  let size = 0;
  let text = 0;
  const flush = (): void => {
    if (size === 0) return;
    statements.push({
      statement: { sql: head + Array.from({ length: size }, () => tuple).join(', '), parameters },
      size,
    });
    parameters = [];
    size = 0;
    text = 0;
  };
  for (const row of rows) {
    const values = columns.map((column) => row[column] ?? null);
    const rowText = values.reduce<number>((sum, value) => sum + (typeof value === 'string' ? value.length : 0), 0);
    if (size === perStatement || (size > 0 && text + rowText > MAX_INSERT_TEXT)) flush();
    parameters.push(...values);
    size++;
    text += rowText;
  }
  flush();
  return statements;
}

/** Rows built by one creator share their columns; a row with others widens the list. */
function columnsOf(rows: Record<string, unknown>[]): string[] {
  const first = Object.keys(rows[0] ?? {});
  return rows.every((row) => Object.keys(row).length === first.length)
    ? first
    : [...new Set(rows.flatMap((row) => Object.keys(row)))];
}

/** One statement's ids come from one sequence in row order: ascending ids are the rows' order (decimal strings: by length, then text). */
function inIdOrder(ids: string[]): string[] {
  return ids.sort(compareIds);
}

/** A claimed row, as its lease fences writes to it. */
export interface LeasedRow {
  id: string;
  leaseToken: string;
}

/** A failed attempt to record as a retry: the row's last error, its attempts in force and when it is due again (epoch ms). */
export interface RetriedRow extends LeasedRow {
  error: string;
  retries: number;
  availableAt: number;
}

/** A failed attempt whose row moves to the failed store: `failedRow` is its copy there ({ column: value }). */
export interface FailedRow extends LeasedRow {
  failedRow: Record<string, unknown>;
}

type Limits = Pick<WorkerDialect, 'maxParameters' | 'lockRowsClause' | 'nowSql'>;

/**
 * Records failed attempts as retries in one transaction: per lease token, the rows still held are
 * read and locked, then updated by one UPDATE (each row its own error, due time and retries through
 * CASE; lease columns cleared); rows cancelled while they ran are deleted ('cancelled'), rows another
 * worker holds now are not touched ('lease-lost').
 */
export function retryLeasedRows(
  tables: WorkerTables,
  rows: RetriedRow[],
  limits: Limits,
): AtomicWork<Map<string, RetryOutcome>> {
  return function* () {
    const byId = new Map(rows.map((row) => [row.id, row]));
    const outcomes = new Map<string, RetryOutcome>();
    for (const [leaseToken, ids] of byLeaseToken(rows)) {
      const { held, cancelled } = yield* lockLeasedRows(tables, leaseToken, ids, limits);
      for (const chunk of chunked([...held], Math.min(RETRIES_PER_UPDATE, limits.maxParameters - 2))) {
        yield retryStatement(
          tables,
          leaseToken,
          chunk.map((id) => byId.get(id)!),
          limits.nowSql,
        );
      }
      yield* deleteLeasedRows(tables, leaseToken, [...cancelled], limits.maxParameters);
      for (const id of ids) outcomes.set(id, held.has(id) ? 'retried' : cancelled.has(id) ? 'cancelled' : 'lease-lost');
    }
    return outcomes;
  };
}

/**
 * Rows one retry UPDATE takes at most: each row looks its values up in CASE lists as long as the
 * statement's rows, so the work grows with the square of the rows (one bind parameter each besides).
 */
const RETRIES_PER_UPDATE = 500;

/**
 * One UPDATE for many retried rows. The ids, due times and retries are our own integers, inlined as
 * checked literals: a bind parameter in a THEN branch has no column type to take on PostgreSQL
 * (it would be text, which the bigint and int columns refuse). Error texts stay bind parameters.
 */
function retryStatement(tables: WorkerTables, leaseToken: string, rows: RetriedRow[], nowSql: string): SqlStatement {
  const ids = rows.map((row) => integerLiteral(row.id, 'row id'));
  const cases = (column: string, value: (row: RetriedRow, index: number) => string): string =>
    `${column} = CASE id ${rows.map((row, index) => `WHEN ${ids[index]} THEN ${value(row, index)}`).join(' ')} ELSE ${column} END`;
  return {
    sql:
      `UPDATE ${tables.pending} SET ${cases('error', () => '?')}, ` +
      `${cases('available_at', (row) => integerLiteral(row.availableAt, 'availableAt'))}, ` +
      `${cases('retries', (row) => integerLiteral(row.retries, 'retries'))}, ` +
      `locked_by = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = ${nowSql} ` +
      `WHERE lease_token = ? AND id IN (${ids.join(', ')}) AND deleted_at IS NULL`,
    parameters: [...rows.map((row) => row.error), leaseToken],
  };
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
  limits: Limits,
): AtomicWork<Map<string, FailedMoveOutcome>> {
  return function* () {
    const outcomes = new Map<string, FailedMoveOutcome>();
    for (const [leaseToken, ids] of byLeaseToken(rows)) {
      const { held, cancelled } = yield* lockLeasedRows(tables, leaseToken, ids, limits);
      yield* deleteLeasedRows(tables, leaseToken, [...held, ...cancelled], limits.maxParameters);
      for (const id of ids) outcomes.set(id, held.has(id) ? 'moved' : cancelled.has(id) ? 'cancelled' : 'lease-lost');
    }
    const moved = rows.filter((row) => outcomes.get(row.id) === 'moved').map((row) => row.failedRow);
    if (moved.length > 0)
      for (const { statement } of multiRowInserts(tables.failed, moved, escape, limits.maxParameters)) yield statement;
    return outcomes;
  };
}

/** Ids per lease token (a claim's rows share one), ascending, so concurrent transactions lock rows in one order. */
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
 * transaction ends: `held` rows are live, `cancelled` ones were cancelled while they ran; any other id
 * is gone or leased to another worker.
 */
function* lockLeasedRows(
  tables: WorkerTables,
  leaseToken: string,
  ids: string[],
  limits: Limits,
): Generator<SqlStatement, { held: Set<string>; cancelled: Set<string> }, StatementResult> {
  const held = new Set<string>();
  const cancelled = new Set<string>();
  for (const chunk of chunked(ids, limits.maxParameters - 1)) {
    const { rows } = yield {
      sql: `SELECT id, deleted_at FROM ${tables.pending} WHERE lease_token = ? AND id IN (${chunk.map(() => '?').join(', ')})${limits.lockRowsClause}`,
      parameters: [leaseToken, ...chunk],
    };
    for (const row of rows)
      (row.deleted_at === null || row.deleted_at === undefined ? held : cancelled).add(String(row.id));
  }
  return { held, cancelled };
}

/** Deletes leased rows, fenced by their lease token like every write of a worker. */
function* deleteLeasedRows(
  tables: WorkerTables,
  leaseToken: string,
  ids: string[],
  maxParameters: number,
): Generator<SqlStatement, void, StatementResult> {
  for (const chunk of chunked(ids, maxParameters - 1)) {
    yield {
      sql: `DELETE FROM ${tables.pending} WHERE lease_token = ? AND id IN (${chunk.map(() => '?').join(', ')})`,
      parameters: [leaseToken, ...chunk],
    };
  }
}

function chunked<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}

/** Decimal ids of one sequence in numeric order: a shorter one is smaller, equal lengths compare as text. */
export function compareIds(a = '', b = ''): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** An integer to inline into SQL, refused unless it is one (a row id as decimal text, or a safe integer). */
function integerLiteral(value: string | number, what: string): string {
  if (typeof value === 'number' ? Number.isSafeInteger(value) : /^\d+$/.test(value)) return String(value);
  throw new WorkerError(`Cannot write ${what} ${String(value)} into SQL: it is not an integer`);
}

/** Which pending row a cancel takes: by id, or by queue and unique key. */
export type CancelRowTarget = { id: string } | { queueName: string; uniqueKey: string };

/**
 * Cancels one pending row: a waiting one (never leased, or its lease expired) is deleted; a running
 * one is soft-deleted and loses its unique key, so no worker claims it again, its worker learns of
 * it at its next heartbeat, and the key is free for a new dispatch. Resolves to the row as it was,
 * with `was_running`, or undefined when no such row is pending.
 */
export function cancelRow(
  tables: WorkerTables,
  target: CancelRowTarget,
  { lockRowsClause, nowSql }: Pick<WorkerDialect, 'lockRowsClause' | 'nowSql'>,
): AtomicWork<RawWorkerRow | undefined> {
  return function* () {
    const byId = 'id' in target;
    const { rows } = yield {
      // Whether its lease is live is the database's call, like every lease decision.
      sql:
        `SELECT *, CASE WHEN lease_token IS NOT NULL AND lease_expires_at > ${nowSql} THEN 1 ELSE 0 END AS lease_live ` +
        `FROM ${tables.pending} WHERE ${byId ? 'id = ?' : 'queue_name = ? AND unique_key = ?'} ` +
        `AND deleted_at IS NULL${lockRowsClause}`,
      parameters: byId ? [target.id] : [target.queueName, target.uniqueKey],
    };
    const [found] = rows;
    if (!found) return undefined;
    const { lease_live: leaseLive, ...row } = found;
    const running = Number(leaseLive) === 1;
    yield running
      ? {
          sql: `UPDATE ${tables.pending} SET deleted_at = ${nowSql}, unique_key = NULL, updated_at = ${nowSql} WHERE id = ?`,
          parameters: [row.id],
        }
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
  for (const [column, value] of [
    ['id', filter.id],
    ['queue_name', filter.queueName],
    ['event_name', filter.eventName],
  ] as const) {
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
export function requeueFailed(
  tables: WorkerTables,
  filter: FailedRowFilter,
  { lockRowsClause, nowSql }: Pick<WorkerDialect, 'lockRowsClause' | 'nowSql'>,
): AtomicWork<number> {
  return function* () {
    const { where, parameters } = failedRowCondition(filter);
    const { rows } = yield {
      sql: `SELECT id FROM ${tables.failed} WHERE ${where} ORDER BY id${lockRowsClause}`,
      parameters,
    };
    if (rows.length === 0) return 0;
    const ids = rows.map((row) => row.id);
    const idList = ids.map(() => '?').join(', ');
    yield {
      sql:
        // Without its unique key: a new event holding that key may be pending already, and the retry must not be lost to it.
        `INSERT INTO ${tables.pending} (queue_name, event_name, payload, attempts, retries, priority, error, created_at, updated_at, available_at) ` +
        `SELECT queue_name, event_name, payload, 0, retries, priority, NULL, ${nowSql}, ${nowSql}, ${nowSql} FROM ${tables.failed} ` +
        `WHERE id IN (${idList}) ORDER BY id`,
      parameters: ids,
    };
    yield { sql: `DELETE FROM ${tables.failed} WHERE id IN (${idList})`, parameters: ids };
    return ids.length;
  };
}

/**
 * Statistics of every queue with rows (or of `queueNames`) in one statement over both tables. A row
 * whose lease expired counts as due: any worker may claim it now.
 */
export function queueStatisticsStatement(
  tables: WorkerTables,
  queueNames: string[] | undefined,
  now: number,
): SqlStatement {
  const only = queueNames ? ` AND queue_name IN (${queueNames.map(() => '?').join(', ')})` : '';
  const names = queueNames ?? [];
  // Due: claimable now (a row whose lease expired included); running: under a live lease.
  const leaseLive = 'lease_token IS NOT NULL AND lease_expires_at > ?';
  const due = 'available_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)';
  return {
    sql:
      // *_count aliases: DELAYED is a reserved word on MySQL/MariaDB.
      'SELECT queue_name, SUM(is_pending) AS pending_count, SUM(is_due) AS due_count, SUM(is_running) AS running_count, ' +
      'SUM(is_delayed) AS delayed_count, SUM(is_failed) AS failed_count, MIN(due_since) AS oldest_due_since FROM (' +
      `SELECT queue_name, 1 AS is_pending, CASE WHEN ${due} THEN 1 ELSE 0 END AS is_due, ` +
      `CASE WHEN ${leaseLive} THEN 1 ELSE 0 END AS is_running, ` +
      `CASE WHEN NOT (${leaseLive}) AND available_at > ? THEN 1 ELSE 0 END AS is_delayed, 0 AS is_failed, ` +
      `CASE WHEN ${due} THEN available_at ELSE NULL END AS due_since FROM ${tables.pending} WHERE deleted_at IS NULL${only} ` +
      `UNION ALL SELECT queue_name, 0, 0, 0, 0, 1, NULL FROM ${tables.failed} WHERE deleted_at IS NULL${only}` +
      ') counted GROUP BY queue_name ORDER BY queue_name',
    parameters: [now, now, now, now, now, now, now, ...names, ...names],
  };
}

export function toQueueStatistics(row: RawWorkerRow, now: number): QueueStatistics {
  const oldestDueSince =
    row.oldest_due_since === null || row.oldest_due_since === undefined ? null : Number(row.oldest_due_since);
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
    const { rows } = yield {
      sql: `SELECT id FROM ${tables.pending} WHERE queue_name = ? AND unique_key = ?`,
      parameters: [held.queueName, held.uniqueKey],
    };
    return rows[0] === undefined ? undefined : String(rows[0].id);
  };
}
