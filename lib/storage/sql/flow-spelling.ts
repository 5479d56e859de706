import type { SqlSpelling } from './statement.js';

/**
 * What flow control's statements (the limited claim, the rate limiters' takes) need of a database
 * beyond SqlSpelling. Each dialect provides it (WorkerDialect extends this).
 */
export interface FlowSpelling extends SqlSpelling {
  /**
   * INSERT INTO `table` (`columns`) VALUES `values` that, where a row of the same `key` exists, sets
   * the `replaced` columns to the new values instead (none: leaves the row as it is). The statement
   * never fails on the key, so a transaction that races another one inserting the same row goes on.
   */
  upsertRows(
    table: string,
    columns: readonly string[],
    values: string,
    key: readonly string[],
    replaced: readonly string[],
  ): string;
  /** Placed after the pending table in a read that must walk the claim-order index (MySQL's optimizer would not). */
  readonly claimIndexHint: string;
  /**
   * Appended to a SELECT inside a transaction to lock the rows it reads, passing over rows other
   * transactions hold ('' where the transaction already excludes writers).
   */
  readonly lockSkippingClause: string;
  /** An UPDATE can return the rows it changed (RETURNING); else they are read again by id. */
  readonly updateReturns: boolean;
  /**
   * A statement after which the transaction's commit does not wait for its log flush (PostgreSQL);
   * undefined where a commit has no such cost to spare. For transactions whose loss in a crash
   * changes nothing that matters (a limited claim that took nothing).
   */
  readonly unflushedCommit: string | undefined;
}

/** INSERT … ON CONFLICT (key) DO UPDATE / DO NOTHING: PostgreSQL and SQLite. */
export function onConflictUpsert(
  table: string,
  columns: readonly string[],
  values: string,
  key: readonly string[],
  replaced: readonly string[],
): string {
  const action =
    replaced.length === 0
      ? 'DO NOTHING'
      : `DO UPDATE SET ${replaced.map((column) => `${column} = excluded.${column}`).join(', ')}`;
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values} ON CONFLICT (${key.join(', ')}) ${action}`;
}

/**
 * INSERT … ON DUPLICATE KEY UPDATE: MySQL and MariaDB. With nothing to replace the key is set to
 * itself (a no-op), not INSERT IGNORE, which would turn every other error (a value too long) into a
 * warning too.
 */
export function onDuplicateKeyUpsert(
  table: string,
  columns: readonly string[],
  values: string,
  key: readonly string[],
  replaced: readonly string[],
): string {
  const set = (replaced.length === 0 ? key : replaced).map((column) => `${column} = VALUES(${column})`);
  return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values} ON DUPLICATE KEY UPDATE ${set.join(', ')}`;
}
