import type { HistoryOutcome } from '../../interfaces/worker-repository.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import { byLeaseToken, deleteLeasedRows, integerLiteral, type LeasedRow, lockLeasedRows } from './leased-rows.js';
import { type AtomicWork, type SqlSpelling, type SqlStatement, type StatementResult } from './statement.js';

/**
 * A finished event to keep in the history: how it ended as its worker saw it, its result (JSON text),
 * why the result was not kept or why it was cancelled, how long it ran, and the progress it reported
 * last (null: the row's own progress, as the heartbeat wrote it, is kept).
 */
export interface HistoryRow extends LeasedRow {
  state: 'completed' | 'cancelled';
  result: string | null;
  error: string | null;
  durationMs: number;
  progress: string | null;
  /** The error text of a row found cancelled while it ran (its worker did not know yet). */
  cancelledError: string;
}

/**
 * Moves finished rows to the history in one transaction: per lease token, the rows still held (and
 * those cancelled while they ran) are locked, copied by one INSERT … SELECT per chunk, with each
 * row's own values joined by id, and deleted by the fenced DELETE. A row another worker holds
 * now is neither copied nor deleted ('lease-lost'). The copy and the delete commit together: a row
 * is never in both tables, nor in neither, and the history's primary key (the pending id) refuses a
 * second copy.
 */
export function completeLeasedRowsToHistory(
  tables: WorkerTables,
  rows: HistoryRow[],
  spelling: Pick<SqlSpelling, 'maxParameters' | 'lockRowsClause' | 'nowSql'> & RowsTableSpelling & HistoryMoveSpelling,
  cancelledErrorOf: (id: string) => string,
): AtomicWork<Map<string, HistoryOutcome>> {
  if (spelling.historyInsertReturns) return copyReturningThenDelete(tables, rows, spelling, cancelledErrorOf);
  return function* () {
    const byId = new Map(rows.map((row) => [row.id, row]));
    const outcomes = new Map<string, HistoryOutcome>();
    for (const [leaseToken, ids] of byLeaseToken(rows)) {
      const { held, cancelled } = yield* lockLeasedRows(tables, leaseToken, ids, spelling);
      const kept = ids.filter((id) => held.has(id) || cancelled.has(id));
      const copies = kept.map((id): HistoryRow => {
        const row = byId.get(id)!;
        // Cancelled while it ran, unknown to its worker: recorded as cancelled, with why.
        return cancelled.has(id) && row.state !== 'cancelled'
          ? { ...row, state: 'cancelled', error: row.cancelledError }
          : row;
      });
      yield* insertHistoryRows(tables, leaseToken, copies, spelling);
      yield* deleteLeasedRows(tables, leaseToken, kept, spelling.maxParameters);
      for (const id of ids) {
        const row = byId.get(id)!;
        outcomes.set(id, cancelled.has(id) ? 'cancelled' : held.has(id) ? row.state : 'lease-lost');
      }
    }
    return outcomes;
  };
}

/**
 * completeLeasedRowsToHistory where no other writer can come between two statements of the
 * transaction (SQLite's immediate transaction): per lease token the INSERT … SELECT, fenced by the
 * lease token, itself decides each row's state from its deleted_at and returns what it copied, and
 * the DELETE removes exactly that. No locking read.
 */
function copyReturningThenDelete(
  tables: WorkerTables,
  rows: HistoryRow[],
  spelling: Pick<SqlSpelling, 'maxParameters' | 'nowSql'> & RowsTableSpelling,
  cancelledErrorOf: (id: string) => string,
): AtomicWork<Map<string, HistoryOutcome>> {
  const [before = '', after = ''] = cancelledErrorOf(ID_MARK).split(ID_MARK);
  return function* () {
    const outcomes = new Map<string, HistoryOutcome>();
    const byId = new Map(rows.map((row) => [row.id, row]));
    for (const [leaseToken, ids] of byLeaseToken(rows)) {
      const moved: { id?: unknown; state?: unknown }[] = [];
      for (const chunk of historyChunks(
        ids.map((id) => byId.get(id)!),
        spelling.maxParameters - 3,
      )) {
        const { rows: copied } = yield historyInsertStatement(tables, leaseToken, chunk, spelling, { before, after });
        moved.push(...copied);
      }
      yield* deleteLeasedRows(
        tables,
        leaseToken,
        moved.map((row) => String(row.id)),
        spelling.maxParameters,
      );
      historyMoveOutcomes(ids, moved, outcomes);
    }
    return outcomes;
  };
}

/** Marks where the row id goes in the cancelled-while-running error text, split around it. */
export const ID_MARK = '\u0001';

/**
 * The history copies of locked rows of one lease (see completeLeasedRowsToHistory), for the
 * transactions that remove rows for other reasons too (a retry or failed move that finds its row
 * cancelled).
 */
export function* insertHistoryRows(
  tables: WorkerTables,
  leaseToken: string,
  rows: HistoryRow[],
  spelling: Pick<SqlSpelling, 'maxParameters' | 'nowSql'> & RowsTableSpelling,
): Generator<SqlStatement, void, StatementResult> {
  for (const chunk of historyChunks(rows, spelling.maxParameters - 1)) {
    yield historyInsertStatement(tables, leaseToken, chunk, spelling);
  }
}

/**
 * `rows` in chunks of one history INSERT each: at most `maxRows` rows, three text parameters per row
 * (progress, result, error) within `parameters`, and MAX_INSERT_TEXT of text.
 */
export function historyChunks(rows: HistoryRow[], parameters: number, maxRows = ROWS_PER_INSERT): HistoryRow[][] {
  const perStatement = Math.min(maxRows, Math.floor(parameters / 3));
  const chunks: HistoryRow[][] = [];
  let chunk: HistoryRow[] = [];
  let text = 0;
  for (const row of rows) {
    const rowText = (row.progress?.length ?? 0) + (row.result?.length ?? 0) + (row.error?.length ?? 0);
    if (chunk.length === perStatement || (chunk.length > 0 && text + rowText > MAX_INSERT_TEXT)) {
      chunks.push(chunk);
      chunk = [];
      text = 0;
    }
    chunk.push(row);
    text += rowText;
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/**
 * Text (in characters) one history INSERT carries at most, as multi-row INSERTs do (see insert.ts):
 * mysql2 inlines the parameters, and a statement must stay below max_allowed_packet with results of
 * up to maxPayloadBytes each (a longer single row still gets its own statement).
 */
const MAX_INSERT_TEXT = 2_000_000;

/**
 * Deletes the rows of one lease found cancelled while they ran, copying the kept ones (`history`) to
 * the history first, in the caller's transaction: what a retry or a failed move does with them.
 */
export function* removeCancelledRows(
  tables: WorkerTables,
  leaseToken: string,
  cancelled: Set<string>,
  byId: Map<string, { history?: HistoryRow }>,
  spelling: Pick<SqlSpelling, 'maxParameters' | 'nowSql'> & RowsTableSpelling,
): Generator<SqlStatement, void, StatementResult> {
  if (cancelled.size === 0) return;
  const kept: HistoryRow[] = [];
  for (const id of cancelled) {
    const history = byId.get(id)?.history;
    if (history) kept.push({ ...history, state: 'cancelled', error: history.error ?? history.cancelledError });
  }
  if (kept.length > 0) yield* insertHistoryRows(tables, leaseToken, kept, spelling);
  yield* deleteLeasedRows(tables, leaseToken, [...cancelled], spelling.maxParameters);
}

/**
 * Rows one history INSERT takes at most: one statement for a batch of the default sizes, within
 * maxParameters and a text size every server takes (see insertHistoryRows).
 */
const ROWS_PER_INSERT = 1000;

/**
 * The history's columns in the order every copy to it writes them (historyInsertStatement, the
 * PostgreSQL move, a cancel of a waiting row): first the pending row's own (historyCopiedColumns),
 * then how it ended.
 */
export const HISTORY_COLUMNS =
  'id, queue_name, event_name, payload, attempts, retries, priority, unique_key, state, progress, result, ' +
  'error, created_at, available_at, started_at, finished_at, duration_ms, worker_id, updated_at';

/** The pending row's columns the history copies as they are, of the pending row named `alias`. */
export function historyCopiedColumns(alias: string): string {
  return ['id', 'queue_name', 'event_name', 'payload', 'attempts', 'retries', 'priority', 'unique_key']
    .map((column) => `${alias}.${column}`)
    .join(', ');
}

/** How a database spells a derived table of literal rows (see valuesRowsTable, unionRowsTable). */
export interface RowsTableSpelling {
  /** A derived table (parenthesized, without alias) of `rows` (SQL expressions), its columns named `columns`. */
  rowsTable(columns: readonly string[], rows: string[][]): string;
}

/**
 * VALUES rows, renamed: PostgreSQL and SQLite both name a VALUES list's columns column1, column2, …
 * (and SQLite has no limit on its rows, unlike its compound SELECTs: 500 terms).
 */
export function valuesRowsTable(columns: readonly string[], rows: string[][]): string {
  const renamed = columns.map((column, index) => `column${index + 1} AS ${column}`).join(', ');
  return `(SELECT ${renamed} FROM (VALUES ${rows.map((row) => `(${row.join(', ')})`).join(', ')}) AS literal_rows)`;
}

/** One SELECT per row, UNION ALL: MySQL and MariaDB spell VALUES tables differently, both know this. */
export function unionRowsTable(columns: readonly string[], rows: string[][]): string {
  const selects = rows.map((row, index) =>
    index === 0
      ? `SELECT ${row.map((value, at) => `${value} AS ${columns[at]}`).join(', ')}`
      : `SELECT ${row.join(', ')}`,
  );
  return `(${selects.join(' UNION ALL ')})`;
}

/**
 * The per-row values a chunk of history rows needs shipped: ids and durations always; the state only
 * where the rows differ in it (else `state`), and each text column only where some row has one (a
 * batch of no-op events has no result, error or progress: its rows then carry two numbers each).
 */
export function historyValueColumns(rows: HistoryRow[]): {
  state: HistoryRow['state'] | undefined;
  texts: ('progress' | 'result' | 'error')[];
} {
  const first = rows[0]?.state;
  const state = rows.every((row) => row.state === first) ? first : undefined;
  const texts = (['progress', 'result', 'error'] as const).filter((column) => rows.some((row) => row[column] !== null));
  return { state, texts };
}

/** The SQL literal of a history state (our own two values). */
export function stateLiteral(state: HistoryRow['state']): string {
  return state === 'cancelled' ? "'cancelled'" : "'completed'";
}

/**
 * INSERT INTO history … SELECT … FROM pending, fenced by the lease token, joined by id to a derived
 * table of the rows' own values (CASE lists would cost each row a walk through all the others), with
 * only the columns that vary (historyValueColumns). Ids, durations and states are our own values,
 * inlined as checked literals; the texts are bind parameters. finished_at (and updated_at) is the
 * database's now, and worker_id the row's locked_by.
 */
function historyInsertStatement(
  tables: WorkerTables,
  leaseToken: string,
  rows: HistoryRow[],
  { nowSql, rowsTable }: Pick<SqlSpelling, 'nowSql'> & RowsTableSpelling,
  returning?: { before: string; after: string },
): SqlStatement {
  const { state, texts } = historyValueColumns(rows);
  const ids = rows.map((row) => integerLiteral(row.id, 'row id'));
  const columns = ['id', 'duration_ms', ...(state ? [] : ['state']), ...texts];
  const values = rows.map((row, index) => [
    ids[index]!,
    integerLiteral(Math.max(0, Math.round(row.durationMs)), 'durationMs'),
    ...(state ? [] : [stateLiteral(row.state)]),
    ...texts.map(() => '?'),
  ]);
  const has = (column: 'progress' | 'result' | 'error'): boolean => texts.includes(column);
  const given = state ? stateLiteral(state) : 'v.state';
  const error = has('error') ? 'v.error' : 'NULL';
  // Returning: the statement itself records a row cancelled while it ran (deleted_at) as cancelled.
  const stateSql = returning ? `CASE WHEN p.deleted_at IS NOT NULL THEN 'cancelled' ELSE ${given} END` : given;
  const errorSql = returning
    ? `CASE WHEN p.deleted_at IS NOT NULL AND ${given} <> 'cancelled' THEN ? || p.id || ? ELSE ${error} END`
    : error;
  return {
    sql:
      `INSERT INTO ${tables.history} (${HISTORY_COLUMNS}) SELECT ${historyCopiedColumns('p')}, ${stateSql}, ` +
      `${has('progress') ? 'COALESCE(v.progress, p.progress)' : 'p.progress'}, ` +
      `${has('result') ? 'v.result' : 'NULL'}, ${errorSql}, ` +
      `p.created_at, p.available_at, p.started_at, ${nowSql}, v.duration_ms, p.locked_by, ${nowSql} ` +
      `FROM ${tables.pending} p JOIN ${rowsTable(columns, values)} v ON v.id = p.id ` +
      `WHERE p.lease_token = ? AND p.id IN (${ids.join(', ')})${returning ? ' RETURNING id, state' : ''}`,
    parameters: [
      ...(returning ? [returning.before, returning.after] : []),
      ...rows.flatMap((row) => texts.map((column) => row[column])),
      leaseToken,
    ],
  };
}

/**
 * A database that moves a lease's rows to the history in ONE statement, the DELETE feeding the
 * INSERT (PostgreSQL: a data-modifying WITH): the DELETE is the fence, and exactly what it deleted is
 * inserted, so no transaction and no locking read are needed. Others leave it undefined and run the
 * transaction script (completeLeasedRowsToHistory).
 */
export interface HistoryMoveSpelling {
  /**
   * The INSERT … SELECT into the history may return what it copied (RETURNING), in a transaction no
   * other writer can enter between its statements (SQLite's immediate transaction): the transaction
   * script then needs no locking read (see copyReturningThenDelete).
   */
  readonly historyInsertReturns?: boolean;
  /**
   * The move of `rows` (all of lease `leaseToken`), returning the id and recorded state ('completed'
   * or 'cancelled') of each row moved; a row not returned was not this lease's any more. A row found
   * cancelled while it ran gets `cancelledErrorOf(id)` as its error.
   */
  readonly historyMoveStatement?: (
    tables: WorkerTables,
    leaseToken: string,
    rows: HistoryRow[],
    cancelledErrorOf: (id: string) => string,
  ) => SqlStatement;
}

/** What a one-statement move (HistoryMoveSpelling) returned, as outcomes of the lease's `ids`. */
export function historyMoveOutcomes(
  ids: string[],
  moved: { id?: unknown; state?: unknown }[],
  outcomes: Map<string, HistoryOutcome>,
): void {
  const states = new Map(moved.map((row) => [String(row.id), row.state === 'cancelled' ? 'cancelled' : 'completed']));
  for (const id of ids) outcomes.set(id, (states.get(id) as HistoryOutcome | undefined) ?? 'lease-lost');
}
