import type { SqlSpelling, SqlStatement } from './statement.js';

/** Which minutes of which queue and event name; undefined bounds are the database's last hour. */
export interface ThroughputFilter {
  queueName?: string;
  eventName?: string;
  /** Epoch ms: the minute holding it, and later ones. */
  from?: number;
  /** Epoch ms: minutes that start before it. */
  to?: number;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;

/**
 * The per-minute rows of the filter, ordered by minute (then queue and event name). Minutes are
 * multiples of 60,000 ms, so "the minute holding `from`, and later" is `minute > from - 60000`, with
 * no division (spelled differently on every database).
 */
export function throughputSeriesStatement(
  throughput: string,
  { nowSql }: Pick<SqlSpelling, 'nowSql'>,
  filter: ThroughputFilter,
): SqlStatement {
  const conditions: string[] = [];
  const parameters: unknown[] = [];
  if (filter.from !== undefined) {
    conditions.push('minute > ?');
    parameters.push(filter.from - MINUTE_MS);
  } else conditions.push(`minute > ${nowSql} - ${HOUR_MS + MINUTE_MS}`);
  if (filter.to !== undefined) {
    conditions.push('minute < ?');
    parameters.push(filter.to);
  } else conditions.push(`minute <= ${nowSql}`);
  if (filter.queueName !== undefined) {
    conditions.push('queue_name = ?');
    parameters.push(filter.queueName);
  }
  if (filter.eventName !== undefined) {
    conditions.push('event_name = ?');
    parameters.push(filter.eventName);
  }
  return {
    sql: `SELECT * FROM ${throughput} WHERE ${conditions.join(' AND ')} ORDER BY minute, queue_name, event_name`,
    parameters,
  };
}
