import { compareIds } from './claim.js';
import { type AtomicWork, placeholders, type SqlStatement, type StatementResult } from './statement.js';

/**
 * Inserts of new rows: one row, one row unless its unique key is taken, many rows in multi-row
 * INSERTs, or one array insert where the database has it (PostgreSQL, see its dialect).
 */

/** INSERT of one row given as { column: value }; `escape` quotes column names for the dialect. */
export function insertRow(table: string, row: Record<string, unknown>, escape: (name: string) => string): SqlStatement {
  const columns = Object.keys(row);
  return {
    sql: `INSERT INTO ${table} (${columns.map(escape).join(', ')}) VALUES (${placeholders(columns.length)})`,
    parameters: Object.values(row),
  };
}

/**
 * insertRow() that changes nothing when the row's (queue_name, unique_key) is taken, where INSERT …
 * ON CONFLICT DO NOTHING exists (PostgreSQL, SQLite): the transaction goes on. MySQL has no such
 * clause: its dialect catches the duplicate key instead.
 */
export function insertUnlessTakenStatement(
  table: string,
  row: Record<string, unknown>,
  escape: (name: string) => string,
): SqlStatement {
  const { sql, parameters } = insertRow(table, row, escape);
  return { sql: `${sql} ON CONFLICT DO NOTHING`, parameters };
}

/** What insertRows needs of a dialect: how its INSERTs into the pending table run and tell their ids. */
export interface PendingInserts {
  readonly maxParameters: number;
  readonly capabilities: { readonly returnsInsertedIds: boolean };
  /** The INSERT into the pending table as this database runs it (see WorkerDialect.pendingInsert). */
  pendingInsert(insert: SqlStatement): SqlStatement;
  /** One statement for any number of rows, taking whole columns as arrays, where the database can. */
  arrayInsert?(columns: string[], rows: Record<string, unknown>[]): SqlStatement;
  /**
   * pendingInsert() of one keyed row (insertRow) that, when the row's (queue_name, unique_key) is
   * taken, inserts nothing and raises nothing, so the transaction it runs in goes on (ON CONFLICT DO
   * NOTHING; INSERT IGNORE on MySQL, whose only other effect is on values the checks before it refuse).
   * Against a holder not yet committed it waits for that transaction, as every unique insert does.
   * Read the outcome with insertedIdOf().
   */
  pendingInsertUnlessTaken(insert: SqlStatement): SqlStatement;
}

/** The id a pendingInsertUnlessTaken() statement inserted, or undefined when the key was taken. */
export function insertedIdOf(result: StatementResult, inserts: PendingInserts): string | undefined {
  if (inserts.capabilities.returnsInsertedIds)
    return result.rows[0] === undefined ? undefined : String(result.rows[0].id);
  return result.affected > 0 && result.insertId !== undefined ? result.insertId : undefined;
}

/**
 * Inserts many rows in multi-row INSERTs (see multiRowInserts), or one array insert where the dialect
 * has it, and returns their ids in the order of `rows` (from RETURNING, or from MySQL's first insert id).
 */
export function insertRows(
  table: string,
  rows: Record<string, unknown>[],
  escape: (name: string) => string,
  inserts: PendingInserts,
): AtomicWork<string[]> {
  return function* () {
    if (inserts.arrayInsert) {
      const result = yield inserts.arrayInsert(columnsOf(rows), rows);
      return inIdOrder(result.rows.map((row) => String(row.id)));
    }
    const ids: string[] = [];
    for (const { statement, size } of multiRowInserts(table, rows, escape, inserts.maxParameters)) {
      const result = yield inserts.pendingInsert(statement);
      if (inserts.capabilities.returnsInsertedIds) {
        ids.push(...inIdOrder(result.rows.map((row) => String(row.id))));
      } else {
        // A multi-row INSERT's ids are insertId, insertId + 1, … (consecutive for an INSERT … VALUES of known length).
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
  const tuple = `(${placeholders(columns.length)})`;
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

/**
 * One statement's ids come from one sequence in row order: ascending ids are the rows' order
 * (decimal strings: by length, then text).
 */
function inIdOrder(ids: string[]): string[] {
  return ids.sort(compareIds);
}
