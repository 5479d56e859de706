import type { WorkerTables } from '../worker-tables.js';
import {
  idColumn,
  type JobSource,
  type JobSpelling,
  jobColumns,
  type PayloadFieldValue,
  sourceCondition,
  sourceTable,
  stateExpression,
  type StoredJobState,
} from './job-rows.js';
import { placeholders, type SqlStatement } from './statement.js';

/** What findJobs() filters on, already checked (names, epoch-ms instants, payload keys). */
export interface JobFilter {
  queueName?: string;
  eventName?: string;
  /** Undefined: every state. */
  states?: StoredJobState[];
  uniqueKey?: string;
  createdFrom?: number;
  createdTo?: number;
  payload?: [key: string, value: PayloadFieldValue][];
}

/** Which states each source can hold: only the sources a state filter names are read. */
const SOURCE_STATES: Record<JobSource, StoredJobState[]> = {
  pending: ['delayed', 'waiting', 'running', 'cancelled'],
  history: ['completed', 'cancelled'],
  failed: ['failed'],
};

interface Branch {
  source: JobSource;
  where: string;
  parameters: unknown[];
}

/** Each source the filter needs, with its conditions. */
function branches(filter: JobFilter, spelling: JobSpelling): Branch[] {
  const result: Branch[] = [];
  for (const source of ['pending', 'history', 'failed'] as const) {
    const conditions = [sourceCondition(source)];
    const parameters: unknown[] = [];
    const add = (condition: string, ...values: unknown[]): void => {
      conditions.push(condition);
      parameters.push(...values);
    };
    if (filter.states !== undefined) {
      const states = filter.states.filter((state) => SOURCE_STATES[source].includes(state));
      if (states.length === 0) continue;
      // A source whose every state is asked for needs no state condition (the failed store always).
      if (states.length < SOURCE_STATES[source].length) {
        add(`${stateExpression(source, spelling)} IN (${placeholders(states.length)})`, ...states);
      }
    }
    if (filter.queueName !== undefined) add('queue_name = ?', filter.queueName);
    if (filter.eventName !== undefined) add('event_name = ?', filter.eventName);
    if (filter.uniqueKey !== undefined) add('unique_key = ?', filter.uniqueKey);
    if (filter.createdFrom !== undefined) add('created_at >= ?', filter.createdFrom);
    if (filter.createdTo !== undefined) add('created_at < ?', filter.createdTo);
    for (const [key, value] of filter.payload ?? []) {
      const match = spelling.payloadFieldEquals(key, value);
      add(`(${match.sql})`, ...match.parameters);
    }
    result.push({ source, where: conditions.join(' AND '), parameters });
  }
  return result;
}

/**
 * One page of the jobs matching `filter`, newest first (by id: dispatch order). Each source gives
 * at most `offset + limit` rows in id order (a backward walk of its (queue_name, id) index or
 * primary key, stopping there), and the merged rows are paged: the database never sorts more
 * than offset + limit rows per source, however large the history.
 */
export function findJobsStatement(
  tables: WorkerTables,
  spelling: JobSpelling,
  filter: JobFilter,
  offset: number,
  limit: number,
): SqlStatement {
  const selected = branches(filter, spelling);
  // Each branch is a derived table: SQLite allows ORDER BY and LIMIT only there, not on a UNION's member.
  const sql = selected
    .map(
      ({ source, where }, position) =>
        `SELECT * FROM (SELECT ${jobColumns(source, spelling)} FROM ${sourceTable(tables, source)} ` +
        `WHERE ${where} ORDER BY ${idColumn(source)} DESC LIMIT ?) AS jobs_${position}`,
    )
    .join(' UNION ALL ');
  return {
    sql: `${sql} ORDER BY job_id DESC, job_rank LIMIT ? OFFSET ?`,
    parameters: [...selected.flatMap(({ parameters }) => [...parameters, offset + limit]), limit, offset],
  };
}

/** How many jobs match `filter` in all: one count per source the filter needs, summed. */
export function countJobsStatement(tables: WorkerTables, spelling: JobSpelling, filter: JobFilter): SqlStatement {
  const selected = branches(filter, spelling);
  if (selected.length === 0) return { sql: 'SELECT 0 AS job_count', parameters: [] };
  const counts = selected.map(
    ({ source, where }) => `(SELECT COUNT(*) FROM ${sourceTable(tables, source)} WHERE ${where})`,
  );
  return {
    sql: `SELECT ${counts.join(' + ')} AS job_count`,
    parameters: selected.flatMap(({ parameters }) => parameters),
  };
}
