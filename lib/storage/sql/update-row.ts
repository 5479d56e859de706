import type { AtomicWork } from './statement.js';

/**
 * UPDATE of one row by id, `values` given as { column: value } (`escape` quotes the column names),
 * fenced by the lease token when there is one: a worker that lost its lease changes nothing.
 * Resolves to how many rows it changed (0: gone, or leased to another worker now).
 */
export function updateRow(
  table: string,
  target: { id: string; leaseToken: string | null },
  values: Record<string, unknown>,
  escape: (name: string) => string,
): AtomicWork<number> {
  const columns = Object.keys(values);
  const fence = target.leaseToken === null ? '' : ' AND lease_token = ?';
  const statement = {
    sql: `UPDATE ${table} SET ${columns.map((column) => `${escape(column)} = ?`).join(', ')} WHERE id = ?${fence}`,
    parameters: [...Object.values(values), target.id, ...(target.leaseToken === null ? [] : [target.leaseToken])],
  };
  return function* () {
    return (yield statement).affected;
  };
}
