import { placeholders, type SqlSpelling, type SqlStatement } from './statement.js';

/**
 * The heartbeat's renewal, by primary key and lease token: an index lookup, so InnoDB locks only the
 * rows renewed. The new expiry is the database's now plus the lease. `progress` (JSON text by row id,
 * reported since the last renewal) rides on the same UPDATE, `progress = CASE id WHEN … END`, so
 * reporting progress never costs a round trip of its own; the fencing covers it too. A lease that has
 * expired is not renewed, even by its holder: once expired, a limited claim has freed its slot
 * (nestjs_workers_slots counts only live leases), and a late renewal bringing it back would let the
 * queue's globalConcurrency or keyConcurrency be exceeded. The holder learns it lost the lease.
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
      `WHERE id IN (${placeholders(ids.length)}) AND lease_token IN (${placeholders(leaseTokens.length)}) ` +
      `AND lease_expires_at > ${nowSql}`,
    parameters: [leaseMs, ...reported.flatMap((id) => [id, progress.get(id)]), ...ids, ...leaseTokens],
  };
}

/** Rows one renewal statement may carry: each costs its id and, with progress, two more parameters. */
export function rowsPerRenewal(maxParameters: number, leaseTokens: number): number {
  return Math.max(1, Math.floor((maxParameters - 1 - leaseTokens) / 3));
}

/**
 * Read after the renewal: a row still held under a live lease now was renewed by it (fencing keeps
 * any other worker's out; an expired lease was not renewed); deleted_at set means it was cancelled
 * while it ran.
 */
export function heldRowsStatement(
  pending: string,
  ids: string[],
  leaseTokens: string[],
  { nowSql }: Pick<SqlSpelling, 'nowSql'>,
): SqlStatement {
  return {
    sql:
      `SELECT id, deleted_at FROM ${pending} ` +
      `WHERE id IN (${placeholders(ids.length)}) AND lease_token IN (${placeholders(leaseTokens.length)}) ` +
      `AND lease_expires_at > ${nowSql}`,
    parameters: [...ids, ...leaseTokens],
  };
}
