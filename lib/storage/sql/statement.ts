import type { RawWorkerRow } from '../worker-row.js';

/** One SQL statement with `?` placeholders (each dialect spells them its own way when it runs it). */
export interface SqlStatement {
  sql: string;
  parameters: unknown[];
}

/**
 * What a statement gave back: the rows it returned, how many rows it changed, and (MySQL) the first
 * id it inserted.
 */
export interface StatementResult {
  rows: RawWorkerRow[];
  affected: number;
  insertId?: string;
}

/**
 * Work that must happen in one transaction, written once for every database as a generator: it
 * yields statements and receives their results. SQLite runs it synchronously inside one
 * better-sqlite3 transaction, the servers on one pooled connection between BEGIN and COMMIT.
 */
export type AtomicWork<T> = () => Generator<SqlStatement, T, StatementResult>;

/**
 * How a database spells the pieces the shared statement builders put in their SQL. Each dialect
 * provides them (WorkerDialect extends this); the builders take them as plain values, so they never
 * import a dialect.
 */
export interface SqlSpelling {
  /**
   * The database's own clock as epoch milliseconds, an SQL expression: the one place each dialect
   * spells "now". Every lease decision (claimable, expired, renewed) is computed with it inside the
   * statement, so a worker whose clock is off can neither take a live lease nor wait for due work.
   * It is stable within a statement (statement start on PostgreSQL and MySQL/MariaDB, the step on
   * SQLite), so it can bound an index range.
   */
  readonly nowSql: string;
  /**
   * "Due by": the pass start (the named parameter `:dueBy`) capped at the database's now, as the one
   * bound on available_at of the claim and the due count (two bounds tempt planners into a sort).
   */
  readonly dueBySql: string;
  /**
   * Appended to a SELECT inside a transaction to lock the rows it reads ('' where the transaction
   * already excludes writers).
   */
  readonly lockRowsClause: string;
  /** Placed after the table in "how many are due" reads so they take one range of the due index. */
  readonly dueIndexHint: string;
  /** Bind parameters one statement may carry: bounds the rows of a multi-row INSERT or an IN list. */
  readonly maxParameters: number;
  /**
   * A DELETE of at most `limit` rows, picked in an index's order: how pruning keeps each statement
   * short (sql/prune.ts has the two spellings).
   */
  boundedDelete(parts: BoundedDelete): string;
}

/**
 * One bounded DELETE as the shared builders describe it: the rows of `table` matching `where`, the
 * first `limit` of them in `orderBy` order (an order an index gives, so the statement reads no more
 * rows than it deletes). `key` is the table's primary key, through which the subquery form picks them.
 */
export interface BoundedDelete {
  table: string;
  key: readonly string[];
  where: string;
  orderBy: string;
  limit: number;
}

/** `count` placeholders, comma-separated (an IN list or a VALUES tuple). */
export function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

/** `items` in slices of at most `size` (statements that must stay within maxParameters). */
export function chunked<T>(items: T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}
