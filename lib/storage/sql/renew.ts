import { placeholders, type SqlSpelling, type SqlStatement } from './statement.js';

/**
 * The heartbeat's renewal, by primary key and lease token: an index lookup, so InnoDB locks only the
 * rows renewed. The new expiry is the database's now plus the lease.
 */
export function renewStatement(
  pending: string,
  ids: string[],
  leaseTokens: string[],
  leaseMs: number,
  { nowSql }: Pick<SqlSpelling, 'nowSql'>,
): SqlStatement {
  return {
    sql:
      `UPDATE ${pending} SET lease_expires_at = ${nowSql} + ? ` +
      `WHERE id IN (${placeholders(ids.length)}) AND lease_token IN (${placeholders(leaseTokens.length)})`,
    parameters: [leaseMs, ...ids, ...leaseTokens],
  };
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
