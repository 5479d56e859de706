import type { DataSource } from 'typeorm';
import { WorkerError } from '../../errors/worker.error.js';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { TypeOrmWorkerModel } from '../typeorm-worker.model.js';
import { WorkerEntity } from '../entities/worker.entity.js';
import type { RawWorkerRow } from '../worker-row.js';

/** What differs between databases: how due rows are leased, and how a row moves to the failed store. */
export interface WorkerDialect {
  /**
   * Leases up to `request.limit` due rows of one queue to `leaseToken`: attempts + 1, lease columns
   * set, available_at moved to the lease expiry. Returns the claimed rows, in any order.
   */
  claim(request: ClaimRequest, leaseToken: string, now: number): Promise<RawWorkerRow[]>;
  /**
   * Deletes the leased pending row and inserts its failed copy in one transaction. Resolves false,
   * having changed nothing, when the lease is no longer held.
   */
  moveToFailed(move: FailedMove): Promise<boolean>;
}

/** A leased pending row and the failed row that replaces it. */
export interface FailedMove {
  id: string;
  leaseToken: string;
  failed: TypeOrmWorkerModel;
}

export type SupportedDatabaseType = 'better-sqlite3' | 'postgres' | 'mysql' | 'mariadb';
export const SUPPORTED_DATABASE_TYPES: readonly SupportedDatabaseType[] = ['better-sqlite3', 'postgres', 'mysql', 'mariadb'];

export class UnsupportedDatabaseError extends WorkerError {
  constructor(type: string) {
    super(`nestjs-workers has no claim path for TypeORM database type "${type}" (supported: ${SUPPORTED_DATABASE_TYPES.join(', ')})`);
  }
}

export function isSupportedDatabaseType(type: unknown): type is SupportedDatabaseType {
  return SUPPORTED_DATABASE_TYPES.includes(type as SupportedDatabaseType);
}

/**
 * The claim as one UPDATE … RETURNING (PostgreSQL, SQLite): the inner SELECT picks the oldest due
 * rows of the queue through the due index, `lockClause` says how it locks them. Its parameters are
 * `claimParameters()`, in that order, spelled by `placeholder(position)`.
 */
export function updateReturningClaimSql(pending: string, placeholder: (position: number) => string, lockClause = ''): string {
  const p = Array.from({ length: 7 }, (_, index) => placeholder(index + 1));
  return (
    `UPDATE ${pending} SET attempts = attempts + 1, locked_by = ${p[0]}, lease_token = ${p[1]}, available_at = ${p[2]}, updated_at = ${p[3]} ` +
    `WHERE id IN (SELECT id FROM ${pending} WHERE queue_name = ${p[4]} AND available_at <= ${p[5]} AND deleted_at IS NULL ` +
    `ORDER BY available_at, id LIMIT ${p[6]}${lockClause}) RETURNING *`
  );
}

export function claimParameters(request: ClaimRequest, leaseToken: string, now: number): unknown[] {
  return [request.workerId, leaseToken, now + request.leaseMs, now, request.queueName, request.dueBy.getTime(), request.limit];
}

/**
 * The failed move of the server databases: a transaction on its own pooled connection. The delete is
 * fenced by the lease token, so a worker that lost its lease rolls back without inserting anything.
 */
export async function moveToFailedInTransaction(dataSource: DataSource, move: FailedMove): Promise<boolean> {
  return dataSource.transaction(async (manager) => {
    const deleted = await manager
      .createQueryBuilder()
      .delete()
      .from(WorkerEntity)
      .where('id = :id AND lease_token = :leaseToken', { id: move.id, leaseToken: move.leaseToken })
      .execute();
    if (!deleted.affected) return false;
    await move.failed.insert(manager);
    return true;
  });
}
