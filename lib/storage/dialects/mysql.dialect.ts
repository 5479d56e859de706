import type { DataSource, EntityManager } from 'typeorm';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import { insertRow } from '../worker-statements.js';
import {
  type AtomicWork,
  atomicallyOnServer,
  claimableCondition,
  runWithin,
  type SqlStatement,
  type WorkerDialect,
} from './worker-dialect.js';

/** InnoDB reports a deadlock (1213) or a lock wait timeout (1205); the claim is simply tried again. */
const RETRYABLE_ERRNOS = new Set([1213, 1205]);
const CLAIM_ATTEMPTS = 3;

/** A deadlock victim or a lock wait that timed out: the transaction was rolled back and may run again. */
function isRetryable(error: unknown): boolean {
  const errno = (error as { errno?: number }).errno;
  return errno !== undefined && RETRYABLE_ERRNOS.has(errno);
}
/** ER_DUP_ENTRY: the row's (queue_name, unique_key) is taken. InnoDB rolls back that statement only. */
const DUPLICATE_KEY_ERRNO = 1062;

/**
 * MySQL 8 / MariaDB ≥ 10.6 have no UPDATE … RETURNING: a locking SELECT … FOR UPDATE SKIP LOCKED
 * over the due index, then one UPDATE by primary key, in one READ COMMITTED transaction (no gap
 * locks, so dispatches into the queue never wait for a claim).
 */
export class MysqlWorkerDialect implements WorkerDialect {
  readonly lockRowsClause = ' FOR UPDATE';
  /** mysql2 inlines parameters client-side; this keeps a statement well below max_allowed_packet too. */
  readonly maxParameters = 65_535;
  /** Left to itself the optimizer reads the due index by queue_name only (ref) and filters every row. */
  readonly dueIndexHint = ' FORCE INDEX (IDX_nestjs_workers_due)';
  readonly claimIndexHint = ' FORCE INDEX (IDX_nestjs_workers_claim)';
  /** A multi-row INSERT's ids are insertId, insertId + 1, … (consecutive for an INSERT … VALUES of known length). */
  readonly returnsIds = false;
  /**
   * The server's clock when the statement began, in epoch ms, read in UTC. Not UNIX_TIMESTAMP(NOW(3)):
   * NOW() is local wall time in the session's time zone (SYSTEM by default), and in a zone with
   * daylight saving the hour repeated in autumn maps back an hour off, so leases taken then would
   * look expired an hour early. UTC_TIMESTAMP() has no such hour. DIV keeps the result an integer.
   */
  readonly nowSql = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000";
  readonly dueBySql = `LEAST(?, ${this.nowSql})`;
  readonly embedded = false;

  returningIds(insertSql: string): string {
    return insertSql;
  }

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: WorkerTables,
  ) {}

  async claim(request: ClaimRequest, leaseToken: string): Promise<RawWorkerRow[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.dataSource.transaction('READ COMMITTED', (manager) =>
          this.claimIn(manager, request, leaseToken),
        );
      } catch (error) {
        if (attempt >= CLAIM_ATTEMPTS || !isRetryable(error)) throw error;
      }
    }
  }

  private async claimIn(manager: EntityManager, request: ClaimRequest, leaseToken: string): Promise<RawWorkerRow[]> {
    const { pending } = this.tables;
    // The lease columns are read under the row locks: a row whose lease is live stays out even if
    // its holder renews between this read and the UPDATE (the renewal waits for the lock).
    const rows = (await manager.query(
      `SELECT * FROM ${pending}${this.claimIndexHint} WHERE queue_name = ? AND ${claimableCondition(this)} ` +
        `ORDER BY priority, available_at, id LIMIT ? FOR UPDATE SKIP LOCKED`,
      [request.queueName, request.dueBy.getTime(), request.limit],
    )) as RawWorkerRow[];
    if (rows.length === 0) return [];
    await manager.query(
      `UPDATE ${pending} SET attempts = attempts + 1, locked_by = ?, lease_token = ?, lease_expires_at = ${this.nowSql} + ?, ` +
        `updated_at = ${this.nowSql} WHERE id IN (${rows.map(() => '?').join(', ')})`,
      [request.workerId, leaseToken, request.leaseMs, ...rows.map((row) => row.id)],
    );
    const leased = { locked_by: request.workerId, lease_token: leaseToken };
    return rows.map((row) => ({ ...row, ...leased, attempts: Number(row.attempts) + 1 }));
  }

  async insertPending(manager: EntityManager, row: Record<string, unknown>): Promise<string | undefined> {
    const { sql, parameters } = insertRow(this.tables.pending, row, (name) => this.dataSource.driver.escape(name));
    try {
      const result = (await manager.query(sql, parameters)) as { insertId: number | string };
      return String(result.insertId);
    } catch (error) {
      if ((error as { errno?: number }).errno === DUPLICATE_KEY_ERRNO) return undefined;
      throw error;
    }
  }

  query(statement: SqlStatement, manager: EntityManager = this.dataSource.manager): Promise<RawWorkerRow[]> {
    return manager.query<RawWorkerRow[]>(statement.sql, statement.parameters);
  }

  atomically<T>(work: AtomicWork<T>): Promise<T> {
    // READ COMMITTED, as the claim: no gap locks, so a batch's failed move does not lock against
    // the claim of the next batch running beside it; a deadlock victim simply runs again.
    return atomicallyOnServer(this.dataSource, work, {
      isolation: 'READ COMMITTED',
      retryable: isRetryable,
      attempts: CLAIM_ATTEMPTS,
    });
  }

  within<T>(manager: EntityManager, work: AtomicWork<T>): Promise<T> {
    return runWithin(manager, work);
  }
}
