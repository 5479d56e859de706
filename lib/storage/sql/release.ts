import { placeholders, type SqlStatement } from './statement.js';

/**
 * Releasing rows a worker claimed but did not start (shutdown), in two statements fenced by the
 * lease tokens: rows cancelled while they waited are removed, the others go back in line where they
 * were (their due time and priority never changed) with the claim's attempt taken back, so
 * releasing never costs a row its turn nor an attempt.
 */
export function releaseStatements(pending: string, ids: string[], leaseTokens: string[]): SqlStatement[] {
  const held = `id IN (${placeholders(ids.length)}) AND lease_token IN (${placeholders(leaseTokens.length)})`;
  const parameters = [...ids, ...leaseTokens];
  return [
    { sql: `DELETE FROM ${pending} WHERE ${held} AND deleted_at IS NOT NULL`, parameters },
    {
      sql:
        `UPDATE ${pending} SET attempts = attempts - 1, locked_by = NULL, lease_token = NULL, ` +
        `lease_expires_at = NULL WHERE ${held}`,
      parameters,
    },
  ];
}
