import type { ThroughputCount } from '../../interfaces/worker-repository.interface.js';
import { placeholders, type SqlStatement } from './statement.js';

/** How a database adds to existing counters in an INSERT: each dialect spells its upsert (see addingUpsert). */
export interface AddingUpsertSpelling {
  /**
   * INSERT INTO `table` (`columns`) VALUES `values` that, where a row of the same `key` exists,
   * adds the new values of `added` to it instead: ON CONFLICT … DO UPDATE (PostgreSQL, SQLite), ON
   * DUPLICATE KEY UPDATE (MySQL, MariaDB).
   */
  addingUpsert(table: string, columns: string[], values: string, key: string[], added: string[]): string;
}

/** The counters of a throughput row, as its columns are named. */
const COUNTERS = ['completed', 'failed', 'retried', 'cancelled', 'snoozed', 'duration_ms'] as const;
const KEY = ['queue_name', 'minute', 'event_name'];

/** Start of the minute of `epochMs`, as throughput rows are keyed. */
export function minuteOf(epochMs: number): number {
  return Math.floor(epochMs / 60_000) * 60_000;
}

/**
 * One upsert for a batch's outcome counts: a row per (queue, minute, event name), created or added
 * to. The rows go in key order, so two workers' upserts into the same minutes lock them in one order
 * (no deadlock between them). Counts of one key are summed first (a key appears once per statement).
 */
export function throughputUpsertStatement(
  throughput: string,
  minute: number,
  counts: ThroughputCount[],
  spelling: AddingUpsertSpelling,
): SqlStatement | undefined {
  const byKey = new Map<string, ThroughputCount>();
  for (const count of counts) {
    const key = JSON.stringify([count.queueName, count.eventName]);
    const known = byKey.get(key);
    if (!known) byKey.set(key, { ...count });
    else for (const field of FIELDS) known[field] += count[field];
  }
  const rows = [...byKey.values()]
    .filter((row) => FIELDS.some((field) => row[field] > 0))
    .sort((a, b) => compareText(a.queueName, b.queueName) || compareText(a.eventName, b.eventName));
  if (rows.length === 0) return undefined;
  const columns = [...KEY, ...COUNTERS];
  const tuple = `(${placeholders(columns.length)})`;
  return {
    sql: spelling.addingUpsert(throughput, columns, rows.map(() => tuple).join(', '), KEY, [...COUNTERS]),
    parameters: rows.flatMap((row) => [
      row.queueName,
      minute,
      row.eventName,
      row.completed,
      row.failed,
      row.retried,
      row.cancelled,
      row.snoozed,
      Math.max(0, Math.round(row.durationMs)),
    ]),
  };
}

const FIELDS = ['completed', 'failed', 'retried', 'cancelled', 'snoozed', 'durationMs'] as const;

/** Plain code-unit order: the same in every process, which is all the lock order needs. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** ON CONFLICT … DO UPDATE, adding to the existing row (PostgreSQL, SQLite): the target is aliased `t`. */
export function onConflictAddingUpsert(
  table: string,
  columns: string[],
  values: string,
  key: string[],
  added: string[],
): string {
  return (
    `INSERT INTO ${table} AS t (${columns.join(', ')}) VALUES ${values} ` +
    `ON CONFLICT (${key.join(', ')}) DO UPDATE SET ` +
    added.map((column) => `${column} = t.${column} + excluded.${column}`).join(', ')
  );
}
