import type { DataSource, EntityManager } from 'typeorm';
import { unionRowsTable } from '../sql/complete-to-history.js';
import {
  CLAIM_ORDER,
  CLAIMED_COLUMNS,
  claimableCondition,
  claimAssignments,
  type ClaimParameters,
  notPausedCondition,
} from '../sql/claim.js';
import { onDuplicateKeyUpsert } from '../sql/flow-spelling.js';
import { insertRow } from '../sql/insert.js';
import { namedStatement } from '../sql/named-parameters.js';
import { deleteOrderedWithLimit } from '../sql/prune.js';
import { atomicallyOnServer, runOne, runWithin } from '../sql/runner.js';
import {
  type AtomicWork,
  placeholders,
  type SqlSpelling,
  type SqlStatement,
  type StatementResult,
} from '../sql/statement.js';
import type { PayloadFieldValue } from '../sql/job-rows.js';
import type { ClaimFlowLimits } from '../../interfaces/flow-control.interface.js';
import { limitedClaim, type LimitedClaimResult } from '../sql/limited-claim.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { StorageCapabilities, WorkerDialect } from './worker-dialect.js';

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
 * The server's clock when the statement began, in epoch ms, read in UTC. Not UNIX_TIMESTAMP(NOW(3)):
 * NOW() is local wall time in the session's time zone (SYSTEM by default), and in a zone with
 * daylight saving the hour repeated in autumn maps back an hour off, so leases taken then would
 * look expired an hour early. UTC_TIMESTAMP() has no such hour. DIV keeps the result an integer.
 */
const NOW_SQL = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000";
const MYSQL_SPELLING: Pick<SqlSpelling, 'nowSql' | 'dueBySql'> = {
  nowSql: NOW_SQL,
  dueBySql: `LEAST(:dueBy, ${NOW_SQL})`,
};

/**
 * The claim's first statement: the due rows of the queue through the claim-order index (left to
 * itself the optimizer reads the due index by queue_name only and sorts), locked, passing over rows
 * other claims hold. The lease columns are read under the row locks: a row whose lease is live
 * stays out even if its holder renews between this read and the UPDATE (the renewal waits for the
 * lock).
 */
export function mysqlClaimSelect(
  { pending, queues }: Pick<WorkerTables, 'pending' | 'queues'>,
  parameters: ClaimParameters,
): SqlStatement {
  return namedStatement<ClaimParameters>(
    `SELECT ${CLAIMED_COLUMNS} FROM ${pending} FORCE INDEX (IDX_nestjs_workers_claim) ` +
      `WHERE queue_name = :queueName AND ${claimableCondition(MYSQL_SPELLING)} ` +
      // A locking read does not lock what its subqueries read: a pause never waits for a claim.
      `AND ${notPausedCondition(queues)} ` +
      `ORDER BY ${CLAIM_ORDER} LIMIT :limit FOR UPDATE SKIP LOCKED`,
  ).bind(parameters);
}

/**
 * MySQL 8 / MariaDB ≥ 10.6 have no UPDATE … RETURNING: the claim is mysqlClaimSelect, then one
 * UPDATE of the rows it locked by primary key, in one transaction. Returns the rows as leased.
 */
export function mysqlClaim(
  tables: Pick<WorkerTables, 'pending' | 'queues'>,
  parameters: ClaimParameters,
): AtomicWork<RawWorkerRow[]> {
  const { pending } = tables;
  const lease = namedStatement<ClaimParameters>(`UPDATE ${pending} SET ${claimAssignments(MYSQL_SPELLING)} `);
  return function* () {
    const { rows } = yield mysqlClaimSelect(tables, parameters);
    if (rows.length === 0) return [];
    const { sql, parameters: values } = lease.bind(parameters);
    yield {
      sql: `${sql}WHERE id IN (${placeholders(rows.length)})`,
      parameters: [...values, ...rows.map((row) => row.id)],
    };
    const leased = { locked_by: parameters.workerId, lease_token: parameters.leaseToken };
    return rows.map((row) => ({ ...row, ...leased, attempts: Number(row.attempts) + 1 }));
  };
}

/**
 * The field as JSON (JSON_TYPE tells its type, written alike by MySQL and MariaDB), NULL for a payload
 * that does not parse: MySQL's JSON_EXTRACT would fail the statement on it, and CASE evaluates the
 * check first. MariaDB has no JSON type (nor CAST AS JSON), so equality is spelled per JSON type:
 * strings compared as bytes (the payload column's collation would make 'A' equal 'a' and ignore
 * trailing spaces), numbers as numbers, booleans by their JSON text.
 */
function payloadFieldEquals(key: string, value: PayloadFieldValue): SqlStatement {
  const path = `$."${key}"`;
  const field = 'CASE WHEN JSON_VALID(payload) THEN JSON_EXTRACT(payload, ?) END';
  if (value === null) return { sql: `JSON_TYPE(${field}) = 'NULL'`, parameters: [path] };
  if (typeof value === 'string') {
    return {
      sql: `JSON_TYPE(${field}) = 'STRING' AND CAST(JSON_UNQUOTE(${field}) AS BINARY) = CAST(? AS BINARY)`,
      parameters: [path, path, value],
    };
  }
  if (typeof value === 'number') {
    return {
      sql: `JSON_TYPE(${field}) IN ('INTEGER', 'UNSIGNED INTEGER', 'DOUBLE', 'DECIMAL') AND ${field} = ?`,
      parameters: [path, path, value],
    };
  }
  return {
    sql: `JSON_TYPE(${field}) = 'BOOLEAN' AND JSON_UNQUOTE(${field}) = ?`,
    parameters: [path, path, String(value)],
  };
}

/** MySQL and MariaDB match an untyped NULL with any column type in a UNION. */
function nullOf(): string {
  return 'NULL';
}

/**
 * MySQL 8 / MariaDB ≥ 10.6. Claims and multi-statement work run in READ COMMITTED transactions (no
 * gap locks, so dispatches into the queue never wait for a claim), and a deadlock victim runs again.
 */
export class MysqlWorkerDialect implements WorkerDialect {
  /** What this database can do, known from its type alone (see capabilitiesOf). */
  static readonly capabilities: StorageCapabilities = {
    joinsCallerTransaction: true,
    canListen: false,
    /** A multi-row INSERT's ids are insertId, insertId + 1, … (consecutive for an INSERT … VALUES of known length). */
    returnsInsertedIds: false,
    embeddedClock: false,
  };
  readonly capabilities = MysqlWorkerDialect.capabilities;
  readonly lockRowsClause = ' FOR UPDATE';
  readonly lockSkippingClause = ' FOR UPDATE SKIP LOCKED';
  /** Left to itself the optimizer reads the due index by queue_name only and sorts (see mysqlClaimSelect). */
  readonly claimIndexHint = ' FORCE INDEX (IDX_nestjs_workers_claim)';
  /** No UPDATE … RETURNING: the claimed rows are read again under their locks. */
  readonly unflushedCommit = undefined;
  readonly updateReturns = false;
  /** ON DUPLICATE KEY UPDATE (see onDuplicateKeyUpsert). */
  readonly upsertRows = onDuplicateKeyUpsert;
  /** mysql2 inlines parameters client-side; this keeps a statement well below max_allowed_packet too. */
  readonly maxParameters = 65_535;
  /** Left to itself the optimizer reads the due index by queue_name only (ref) and filters every row. */
  readonly dueIndexHint = ' FORCE INDEX (IDX_nestjs_workers_due)';
  readonly nowSql = MYSQL_SPELLING.nowSql;
  /** A derived table of literal rows: UNION ALL rows (see unionRowsTable). */
  readonly rowsTable = unionRowsTable;
  /** Pruning's bounded DELETE (see sql/prune.ts). */
  readonly boundedDelete = deleteOrderedWithLimit;
  readonly dueBySql = MYSQL_SPELLING.dueBySql;
  readonly payloadFieldEquals = payloadFieldEquals;
  readonly nullOf = nullOf;

  /** ON DUPLICATE KEY UPDATE c = c + VALUES(c): MariaDB has no row alias for the new values, both know VALUES(). */
  addingUpsert(table: string, columns: string[], values: string, _key: string[], added: string[]): string {
    return (
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${values} ON DUPLICATE KEY UPDATE ` +
      added.map((column) => `${column} = ${column} + VALUES(${column})`).join(', ')
    );
  }

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: WorkerTables,
  ) {}

  claim(parameters: ClaimParameters): Promise<RawWorkerRow[]> {
    return atomicallyOnServer(this.dataSource, mysqlClaim(this.tables, parameters), {
      isolation: 'READ COMMITTED',
      retryable: isRetryable,
      attempts: CLAIM_ATTEMPTS,
    });
  }

  /** The limited claim (sql/limited-claim.ts) in one transaction of atomically(). */
  claimLimited(parameters: ClaimParameters, flow: ClaimFlowLimits): Promise<LimitedClaimResult> {
    return this.atomically(limitedClaim(this.tables, this, parameters, flow));
  }

  /** As it is: insertId tells the new ids, and MySQL has no NOTIFY. */
  pendingInsert(insert: SqlStatement): SqlStatement {
    return insert;
  }

  /**
   * INSERT IGNORE: MySQL has no ON CONFLICT, and inside a transaction script a duplicate key cannot
   * be caught (insertPending catches it outside one). A taken key inserts no row (affected 0).
   */
  pendingInsertUnlessTaken(insert: SqlStatement): SqlStatement {
    return { sql: insert.sql.replace(/^INSERT INTO /, 'INSERT IGNORE INTO '), parameters: insert.parameters };
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

  execute(statement: SqlStatement, manager: EntityManager = this.dataSource.manager): Promise<StatementResult> {
    return runOne(manager, statement);
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
