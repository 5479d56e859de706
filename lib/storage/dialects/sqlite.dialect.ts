import type { DataSource } from 'typeorm';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import { claimParameters, type FailedMove, updateReturningClaimSql, type WorkerDialect } from './worker-dialect.js';

/** The part of better-sqlite3's Database that the failed move uses. */
interface SqliteConnection {
  prepare(sql: string): { run(...parameters: unknown[]): { changes: number } };
  transaction(work: () => boolean): { immediate(): boolean };
}

/**
 * SQLite has one writer at a time. A single UPDATE … RETURNING statement takes the write lock when it
 * starts (like BEGIN IMMEDIATE) and selects and leases the rows inside that lock, so two processes
 * on one database file can never lease the same row; busy_timeout makes the loser wait its turn.
 */
export class SqliteWorkerDialect implements WorkerDialect {
  private readonly claimSql: string;

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: WorkerTables,
  ) {
    this.claimSql = updateReturningClaimSql(tables.pending, () => '?');
  }

  claim(request: ClaimRequest, leaseToken: string, now: number): Promise<RawWorkerRow[]> {
    return this.dataSource.query<RawWorkerRow[]>(this.claimSql, claimParameters(request, leaseToken, now));
  }

  /**
   * TypeORM runs every better-sqlite3 query on one shared connection, so a TypeORM transaction spans
   * whatever else the process awaits meanwhile (other lanes, dispatches). better-sqlite3's own
   * transaction runs synchronously: nothing can interleave with it, and BEGIN IMMEDIATE holds the
   * file's write lock against other processes from the first statement.
   */
  async moveToFailed(move: FailedMove): Promise<boolean> {
    const connection = (this.dataSource.driver as unknown as { databaseConnection: SqliteConnection }).databaseConnection;
    const failedRow = move.failed.databaseRow();
    const columns = Object.keys(failedRow);
    const remove = connection.prepare(`DELETE FROM ${this.tables.pending} WHERE id = ? AND lease_token = ?`);
    const insert = connection.prepare(
      `INSERT INTO ${this.tables.failed} (${columns.map((column) => this.dataSource.driver.escape(column)).join(', ')}) ` +
        `VALUES (${columns.map(() => '?').join(', ')})`,
    );
    const values = Object.values(failedRow);
    return connection
      .transaction(() => {
        if (remove.run(move.id, move.leaseToken).changes === 0) return false;
        insert.run(...values);
        return true;
      })
      .immediate();
  }
}
