import type { DataSource } from 'typeorm';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { WorkerDialect } from './worker-dialect.js';

/**
 * SQLite has one writer at a time. A single UPDATE … RETURNING statement takes the write lock when it
 * starts (like BEGIN IMMEDIATE) and selects and leases the rows inside that lock, so two processes
 * on one database file can never lease the same row; busy_timeout makes the loser wait its turn.
 */
export class SqliteWorkerDialect implements WorkerDialect {
  async claim(
    dataSource: DataSource,
    table: string,
    request: ClaimRequest,
    leaseToken: string,
    now: number,
  ): Promise<RawWorkerRow[]> {
    const sql =
      `UPDATE ${table} SET attempts = attempts + 1, locked_by = ?, lease_token = ?, available_at = ?, updated_at = ? ` +
      `WHERE id IN (SELECT id FROM ${table} WHERE queue_name = ? AND available_at <= ? AND deleted_at IS NULL ` +
      `ORDER BY available_at, id LIMIT ?) RETURNING *`;
    return (await dataSource.query(sql, [
      request.workerId,
      leaseToken,
      now + request.leaseMs,
      now,
      request.queueName,
      request.dueBy.getTime(),
      request.limit,
    ])) as RawWorkerRow[];
  }
}
