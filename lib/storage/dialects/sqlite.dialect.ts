import type { DataSource, EntityManager } from 'typeorm';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import {
  type AtomicWork,
  claimParameters,
  insertUnlessTaken,
  runWithin,
  type SqlStatement,
  type StatementResult,
  updateReturningClaimSql,
  type WorkerDialect,
} from './worker-dialect.js';

/** The part of better-sqlite3's Database that `atomically` uses. */
interface SqliteConnection {
  prepare(sql: string): {
    reader: boolean;
    all(...parameters: unknown[]): RawWorkerRow[];
    run(...parameters: unknown[]): { changes: number };
  };
  transaction<T>(work: () => T): { immediate(): T };
}

/**
 * SQLite has one writer at a time. A single UPDATE … RETURNING statement takes the write lock when it
 * starts (like BEGIN IMMEDIATE) and selects and leases the rows inside that lock, so two processes
 * on one database file can never lease the same row; busy_timeout makes the loser wait its turn.
 */
export class SqliteWorkerDialect implements WorkerDialect {
  /** BEGIN IMMEDIATE already holds the file's write lock. */
  readonly lockRowsClause = '';
  /** SQLITE_MAX_VARIABLE_NUMBER of the SQLite that better-sqlite3 bundles. */
  readonly maxParameters = 32_766;
  readonly dueIndexHint = '';
  readonly claimIndexHint = '';
  readonly returnsIds = true;
  /**
   * SQLite has no server: 'now' is the clock of the machine it runs on, shared by every process that
   * can open the database file (they are on that machine), and the same within one statement.
   */
  readonly nowSql = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
  readonly embedded = true;
  /**
   * The pass start alone: it was read from this very clock (an embedded database's clock is the
   * process's, see DatabaseClock), so it never exceeds now; and a bare parameter keeps SQLite's
   * planner on the claim-order index (an expression there makes it sort a range of the due index).
   */
  readonly dueBySql = '?';

  returningIds(insertSql: string): string {
    return `${insertSql} RETURNING id`;
  }
  private readonly claimSql: string;

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: WorkerTables,
  ) {
    this.claimSql = updateReturningClaimSql(tables.pending, this, { indexHint: this.claimIndexHint });
  }

  claim(request: ClaimRequest, leaseToken: string): Promise<RawWorkerRow[]> {
    return this.dataSource.query<RawWorkerRow[]>(this.claimSql, claimParameters(request, leaseToken));
  }

  insertPending(manager: EntityManager, row: Record<string, unknown>): Promise<string | undefined> {
    return insertUnlessTaken(this, this.tables.pending, row, (name) => this.dataSource.driver.escape(name), manager);
  }

  /**
   * TypeORM runs every better-sqlite3 query on one shared connection, so a TypeORM transaction spans
   * whatever else the process awaits meanwhile (other lanes, dispatches). better-sqlite3's own
   * transaction runs synchronously: nothing can interleave with it, and BEGIN IMMEDIATE holds the
   * file's write lock against other processes from the first statement.
   */
  query(statement: SqlStatement, manager: EntityManager = this.dataSource.manager): Promise<RawWorkerRow[]> {
    return manager.query<RawWorkerRow[]>(statement.sql, statement.parameters);
  }

  async atomically<T>(work: AtomicWork<T>): Promise<T> {
    const connection = (this.dataSource.driver as unknown as { databaseConnection: SqliteConnection })
      .databaseConnection;
    return connection
      .transaction(() => {
        const steps = work();
        let step = steps.next();
        while (!step.done) {
          const statement = connection.prepare(step.value.sql);
          const result: StatementResult = statement.reader
            ? { rows: statement.all(...step.value.parameters), affected: 0 }
            : { rows: [], affected: statement.run(...step.value.parameters).changes };
          step = steps.next(result);
        }
        return step.value;
      })
      .immediate();
  }

  /** Refused before it gets here (one shared connection, see insertWithin); kept for the interface. */
  within<T>(manager: EntityManager, work: AtomicWork<T>): Promise<T> {
    return runWithin(manager, work);
  }
}
