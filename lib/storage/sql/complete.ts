import { placeholders, type SqlStatement } from './statement.js';
import { deleteLeasedStatement } from './leased-rows.js';

/**
 * Completing a claim's rows: one DELETE per lease token (a claim's rows share one), fenced by it:
 * WHERE lease_token = ? AND id IN (…). Not a transaction: each DELETE stands alone.
 */
export function completeStatement(pending: string, leaseToken: string, ids: string[]): SqlStatement {
  return deleteLeasedStatement(pending, leaseToken, ids);
}

/**
 * Rare, after a DELETE that changed fewer rows than it named: another worker holds some of them
 * now; the rows still there are the ones it holds.
 */
export function stillPendingStatement(pending: string, ids: string[]): SqlStatement {
  return { sql: `SELECT id FROM ${pending} WHERE id IN (${placeholders(ids.length)})`, parameters: ids };
}
