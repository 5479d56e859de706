import { placeholders, type SqlSpelling, type SqlStatement } from './statement.js';

/**
 * The heartbeat's renewal, by primary key and lease token: an index lookup, so InnoDB locks only the
 * rows renewed. The new expiry is the database's now plus the lease. `progress` (JSON text by row id,
 * reported since the last renewal) rides on the same UPDATE, `progress = CASE id WHEN … END`, so
 * reporting progress never costs a round trip of its own; the fencing covers it too.
 */
export function renewStatement(
  pending: string,
  ids: string[],
  leaseTokens: string[],
  leaseMs: number,
  { nowSql }: Pick<SqlSpelling, 'nowSql'>,
  progress: ReadonlyMap<string, string> = new Map(),
): SqlStatement {
  const reported = ids.filter((id) => progress.has(id));
  const progressSql =
    reported.length === 0
      ? ''
      : `, progress = CASE id ${reported.map(() => 'WHEN ? THEN ?').join(' ')} ELSE progress END`;
  return {
    sql:
      `UPDATE ${pending} SET lease_expires_at = ${nowSql} + ?${progressSql} ` +
      `WHERE id IN (${placeholders(ids.length)}) AND lease_token IN (${placeholders(leaseTokens.length)})`,
    parameters: [leaseMs, ...reported.flatMap((id) => [id, progress.get(id)]), ...ids, ...leaseTokens],
  };
}

/** Rows one renewal statement may carry: each costs its id and, with progress, two more parameters. */
export function rowsPerRenewal(maxParameters: number, leaseTokens: number): number {
  return Math.max(1, Math.floor((maxParameters - 1 - leaseTokens) / 3));
}

/**
 * Read after the renewal: a row still held now was renewed by it (fencing keeps any other worker's
 * out); deleted_at set means it was cancelled while it ran.
 */
export function heldRowsStatement(pending: string, ids: string[], leaseTokens: string[]): SqlStatement {
  return {
    sql:
      `SELECT id, deleted_at FROM ${pending} ` +
      `WHERE id IN (${placeholders(ids.length)}) AND lease_token IN (${placeholders(leaseTokens.length)})`,
    parameters: [...ids, ...leaseTokens],
  };
}
