import type { DataSource } from 'typeorm';
import { WorkerError } from '../../errors/worker.error.js';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { RawWorkerRow } from '../worker-row.js';
import { SqliteWorkerDialect } from './sqlite.dialect.js';

/** What differs between databases: how a batch of due rows is leased in one round trip. */
export interface WorkerDialect {
  /**
   * Leases up to `request.limit` due rows of one queue to `leaseToken`: attempts + 1, lease columns
   * set, available_at moved to the lease expiry. Returns the claimed rows, in any order.
   */
  claim(dataSource: DataSource, table: string, request: ClaimRequest, leaseToken: string, now: number): Promise<RawWorkerRow[]>;
  /**
   * Deletes the leased pending row and inserts its failed copy in one transaction that nothing else
   * can join. Resolves false, having changed nothing, when the lease is no longer held.
   */
  moveToFailed(dataSource: DataSource, move: FailedMove): Promise<boolean>;
}

/** A leased pending row and the failed row that replaces it. */
export interface FailedMove {
  pendingTable: string;
  failedTable: string;
  id: string;
  leaseToken: string;
  /** The failed row, keyed by database column name. */
  failedRow: Record<string, unknown>;
}

export class UnsupportedDatabaseError extends WorkerError {
  constructor(type: string) {
    super(`nestjs-workers has no claim path for TypeORM database type "${type}" (supported: better-sqlite3)`);
  }
}

export function dialectFor(dataSource: DataSource): WorkerDialect {
  const type = dataSource.options.type;
  switch (type) {
    case 'better-sqlite3':
      return new SqliteWorkerDialect();
    default:
      throw new UnsupportedDatabaseError(type);
  }
}
