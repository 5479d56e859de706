import { claimableCondition } from './claim.js';
import { type NamedStatement, namedStatement } from './named-parameters.js';
import type { SqlSpelling } from './statement.js';

/** The named parameters of the due count. */
export interface CountDueParameters {
  queueName: string;
  /** The pass start, epoch ms (capped at the database's now by dueBySql). */
  dueBy: number;
  limit: number;
}

/**
 * Due rows of a queue that are not leased, at most `limit`: one range of the due index
 * (queue_name, available_at, id), read no further than that. The claim counts first and then takes
 * no more than this many, so its walk in claim order stops once it has them instead of passing every
 * delayed row of the queue. Compiled once per table; bind() per count.
 */
export function countDueStatement(
  pending: string,
  spelling: Pick<SqlSpelling, 'nowSql' | 'dueBySql' | 'dueIndexHint'>,
): NamedStatement<CountDueParameters> {
  return namedStatement<CountDueParameters>(
    `SELECT COUNT(*) AS due_count FROM (SELECT id FROM ${pending}${spelling.dueIndexHint} ` +
      // ORDER BY the due index's own order: planners then read that range rather than scan and stop early.
      `WHERE queue_name = :queueName AND ${claimableCondition(spelling)} ORDER BY available_at, id LIMIT :limit) due`,
  );
}
