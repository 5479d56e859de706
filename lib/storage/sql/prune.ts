import type { BoundedDelete, SqlSpelling, SqlStatement } from './statement.js';

/**
 * PostgreSQL and SQLite: the rows are picked by a subquery on the key (neither has DELETE … LIMIT in
 * a default build). A composite key compares as a row value.
 */
export function deleteThroughKeySubquery({ table, key, where, orderBy, limit }: BoundedDelete): string {
  const keyList = key.length === 1 ? key[0]! : `(${key.join(', ')})`;
  return (
    `DELETE FROM ${table} WHERE ${keyList} IN ` +
    `(SELECT ${key.join(', ')} FROM ${table} WHERE ${where} ORDER BY ${orderBy} LIMIT ${integer(limit)})`
  );
}

/** MySQL / MariaDB: DELETE … ORDER BY … LIMIT (they refuse a subquery on the table being deleted from). */
export function deleteOrderedWithLimit({ table, where, orderBy, limit }: BoundedDelete): string {
  return `DELETE FROM ${table} WHERE ${where} ORDER BY ${orderBy} LIMIT ${integer(limit)}`;
}

/** The limit is the code's own constant, written into the SQL (mysql2 inlines parameters as strings). */
function integer(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`A prune batch needs a positive limit (${limit})`);
  return limit;
}

/** Which event names of a queue a history step covers: one event class's, or all but the listed ones. */
export type EventNameScope = { only: string } | { except: readonly string[] };

/** Rows of one queue of the history or the failed store, optionally of some event names only. */
export interface QueueRowScope {
  table: 'history' | 'failed';
  queueName: string;
  events?: EventNameScope;
}

/** The newest row beyond a count: it and every row older than it (by time, then id) are pruned. */
export interface RowCutoff {
  at: number;
  id: unknown;
}

/** The time column (epoch ms) each prunable table is pruned by, and its primary key. */
const TABLES = {
  history: { time: 'finished_at', key: ['id'] },
  failed: { time: 'failed_at', key: ['id'] },
  throughput: { time: 'minute', key: ['queue_name', 'minute', 'event_name'] },
  processes: { time: 'heartbeat_at', key: ['id'] },
  // A throttle window is pruned once it has ended (maxAgeMs 0): until_at is its end, not its start;
  // the batches walk IDX_nestjs_workers_throttles_until, oldest end first.
  throttles: { time: 'until_at', key: ['queue_name', 'unique_key'] },
} as const;

export type PrunableTable = keyof typeof TABLES;

function scopeCondition(scope: QueueRowScope): SqlStatement {
  const parameters: unknown[] = [scope.queueName];
  let sql = 'queue_name = ?';
  const events = scope.events;
  if (events && 'only' in events) {
    sql += ' AND event_name = ?';
    parameters.push(events.only);
  } else if (events && events.except.length > 0) {
    sql += ` AND event_name NOT IN (${events.except.map(() => '?').join(', ')})`;
    parameters.push(...events.except);
  }
  return { sql, parameters };
}

/**
 * Deletes up to `limit` rows of `table` (the whole table, or one queue's rows of it) whose time is
 * more than `maxAgeMs` before the database's clock, oldest first through the (queue_name, time) or
 * time index.
 */
export function pruneOlderThanStatement(
  spelling: SqlSpelling,
  tableName: string,
  scope: QueueRowScope | PrunableTable,
  maxAgeMs: number,
  limit: number,
): SqlStatement {
  const table: { time: string; key: readonly string[] } = TABLES[typeof scope === 'string' ? scope : scope.table];
  const scoped = typeof scope === 'string' ? { sql: '', parameters: [] } : scopeCondition(scope);
  return {
    sql: spelling.boundedDelete({
      table: tableName,
      key: table.key,
      where: `${scoped.sql ? `${scoped.sql} AND ` : ''}${table.time} < (${spelling.nowSql}) - ?`,
      orderBy: table.time,
      limit,
    }),
    parameters: [...scoped.parameters, Math.floor(maxAgeMs)],
  };
}

/** The (maxCount + 1)-th newest row of the scope by (time, id), if it has that many: the first one to prune. */
export function cutoffStatement(tableName: string, scope: QueueRowScope, maxCount: number): SqlStatement {
  const { time } = TABLES[scope.table];
  const scoped = scopeCondition(scope);
  return {
    sql:
      `SELECT ${time} AS cutoff_at, id AS cutoff_id FROM ${tableName} WHERE ${scoped.sql} ` +
      `ORDER BY ${time} DESC, id DESC LIMIT 1 OFFSET ${Math.max(0, Math.floor(maxCount))}`,
    parameters: scoped.parameters,
  };
}

/**
 * Deletes up to `limit` rows of the scope at or before `cutoff` by (time, id), oldest first. The
 * first bound takes an index range; the second settles rows of the cutoff's own millisecond (a
 * batch of completions shares one finished_at).
 */
export function pruneUpToStatement(
  spelling: SqlSpelling,
  tableName: string,
  scope: QueueRowScope,
  cutoff: RowCutoff,
  limit: number,
): SqlStatement {
  const { time, key } = TABLES[scope.table];
  const scoped = scopeCondition(scope);
  return {
    sql: spelling.boundedDelete({
      table: tableName,
      key,
      where: `${scoped.sql} AND ${time} <= ? AND (${time} < ? OR id <= ?)`,
      orderBy: `${time}, id`,
      limit,
    }),
    parameters: [...scoped.parameters, cutoff.at, cutoff.at, cutoff.id],
  };
}

/**
 * The pruner's turn: moves the turn row's last_slot_at forward to `slotAt` in one committed
 * statement; the replica whose UPDATE changed the row has the turn (see RetentionStore.takeTurn).
 */
export function takePruneTurnStatement(schedules: string, name: string, slotAt: number, now: number): SqlStatement {
  return {
    sql: `UPDATE ${schedules} SET last_slot_at = ?, updated_at = ? WHERE name = ? AND last_slot_at < ?`,
    parameters: [slotAt, now, name, slotAt],
  };
}
