import type { DataSource } from 'typeorm';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import { type FailedMove, moveToFailedInTransaction, type WorkerDialect } from './worker-dialect.js';

/**
 * One statement per batch: the inner SELECT walks the due index oldest first and locks what it
 * takes; SKIP LOCKED makes concurrent workers pass over each other's rows instead of waiting.
 */
export class PostgresWorkerDialect implements WorkerDialect {
  private readonly claimSql: string;

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: WorkerTables,
  ) {
    const { pending } = tables;
    // Wrapped in a CTE so the driver reports a SELECT and TypeORM returns the rows alone.
    this.claimSql =
      `WITH claimed AS (UPDATE ${pending} SET attempts = attempts + 1, locked_by = $1, lease_token = $2, available_at = $3, updated_at = $4 ` +
      `WHERE id IN (SELECT id FROM ${pending} WHERE queue_name = $5 AND available_at <= $6 AND deleted_at IS NULL ` +
      `ORDER BY available_at, id LIMIT $7 FOR UPDATE SKIP LOCKED) RETURNING *) SELECT * FROM claimed`;
  }

  async claim(request: ClaimRequest, leaseToken: string, now: number): Promise<RawWorkerRow[]> {
    return this.dataSource.query<RawWorkerRow[]>(this.claimSql, [
      request.workerId,
      leaseToken,
      now + request.leaseMs,
      now,
      request.queueName,
      request.dueBy.getTime(),
      request.limit,
    ]);
  }

  moveToFailed(move: FailedMove): Promise<boolean> {
    return moveToFailedInTransaction(this.dataSource, move);
  }
}
