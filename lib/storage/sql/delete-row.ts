import type { AtomicWork } from './statement.js';

/**
 * DELETE of one row by id, fenced by the lease token when there is one: a worker that lost its
 * lease deletes nothing. Resolves to how many rows it deleted (0: gone, or leased to another worker).
 */
export function deleteRow(table: string, target: { id: string; leaseToken: string | null }): AtomicWork<number> {
  const statement =
    target.leaseToken === null
      ? { sql: `DELETE FROM ${table} WHERE id = ?`, parameters: [target.id] }
      : { sql: `DELETE FROM ${table} WHERE id = ? AND lease_token = ?`, parameters: [target.id, target.leaseToken] };
  return function* () {
    return (yield statement).affected;
  };
}
