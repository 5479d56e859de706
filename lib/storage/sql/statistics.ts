import type { QueueStatistics } from '../../interfaces/failed-workers.interface.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { WorkerTables } from '../worker-tables.js';
import { placeholders, type SqlStatement } from './statement.js';

/**
 * Statistics of every queue with rows or paused (or of `queueNames`) in one statement over both tables
 * and the queues' paused flags. A row whose lease expired counts as due: any worker may claim it now.
 */
export function queueStatisticsStatement(
  tables: WorkerTables,
  queueNames: string[] | undefined,
  now: number,
): SqlStatement {
  const only = queueNames ? ` AND queue_name IN (${placeholders(queueNames.length)})` : '';
  const names = queueNames ?? [];
  // Due: claimable now (a row whose lease expired included); running: under a live lease.
  const leaseLive = 'lease_token IS NOT NULL AND lease_expires_at > ?';
  const due = 'available_at <= ? AND (lease_expires_at IS NULL OR lease_expires_at <= ?)';
  return {
    sql:
      // *_count aliases: DELAYED is a reserved word on MySQL/MariaDB.
      'SELECT queue_name, SUM(is_pending) AS pending_count, SUM(is_due) AS due_count, ' +
      'SUM(is_running) AS running_count, SUM(is_delayed) AS delayed_count, SUM(is_failed) AS failed_count, ' +
      'MIN(due_since) AS oldest_due_since, MAX(is_paused) AS paused_flag FROM (' +
      `SELECT queue_name, 1 AS is_pending, CASE WHEN ${due} THEN 1 ELSE 0 END AS is_due, ` +
      `CASE WHEN ${leaseLive} THEN 1 ELSE 0 END AS is_running, ` +
      `CASE WHEN NOT (${leaseLive}) AND available_at > ? THEN 1 ELSE 0 END AS is_delayed, 0 AS is_failed, ` +
      `CASE WHEN ${due} THEN available_at ELSE NULL END AS due_since, 0 AS is_paused ` +
      `FROM ${tables.pending} WHERE deleted_at IS NULL${only} ` +
      `UNION ALL SELECT queue_name, 0, 0, 0, 0, 1, NULL, 0 FROM ${tables.failed} WHERE deleted_at IS NULL${only} ` +
      // A paused queue is listed even when it has no rows: what an operator most needs to see.
      `UNION ALL SELECT queue_name, 0, 0, 0, 0, 0, NULL, 1 FROM ${tables.queues} WHERE paused = 1${only}` +
      ') counted GROUP BY queue_name ORDER BY queue_name',
    parameters: [now, now, now, now, now, now, now, ...names, ...names, ...names],
  };
}

export function toQueueStatistics(row: RawWorkerRow, now: number): QueueStatistics {
  const oldestDueSince =
    row.oldest_due_since === null || row.oldest_due_since === undefined ? null : Number(row.oldest_due_since);
  return {
    queueName: String(row.queue_name),
    pending: Number(row.pending_count),
    due: Number(row.due_count),
    running: Number(row.running_count),
    delayed: Number(row.delayed_count),
    failed: Number(row.failed_count),
    oldestDueAgeMs: oldestDueSince === null ? null : Math.max(0, now - oldestDueSince),
    paused: Number(row.paused_flag) === 1,
  };
}
