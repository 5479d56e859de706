import type { DataSource, EntityManager } from 'typeorm';
import { valuesRowsTable } from '../sql/complete-to-history.js';
import {
  CLAIM_ORDER,
  CLAIMED_COLUMNS,
  claimableCondition,
  claimAssignments,
  type ClaimParameters,
  notPausedCondition,
} from '../sql/claim.js';
import { onConflictUpsert } from '../sql/flow-spelling.js';
import { insertUnlessTakenStatement } from '../sql/insert.js';
import { type NamedStatement, namedStatement } from '../sql/named-parameters.js';
import { onConflictAddingUpsert } from '../sql/throughput.js';
import { runOne, runWithin } from '../sql/runner.js';
import type { AtomicWork, SqlSpelling, SqlStatement, StatementResult } from '../sql/statement.js';
import type { PayloadFieldValue } from '../sql/job-rows.js';
import { deleteThroughKeySubquery } from '../sql/prune.js';
import type { ClaimFlowLimits } from '../../interfaces/flow-control.interface.js';
import { limitedClaim, type LimitedClaimResult } from '../sql/limited-claim.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { StorageCapabilities, WorkerDialect } from './worker-dialect.js';

/** The part of better-sqlite3's Database that `atomically` uses. */
interface SqliteConnection {
  prepare(sql: string): {
    reader: boolean;
    all(...parameters: unknown[]): RawWorkerRow[];
    run(...parameters: unknown[]): { changes: number };
  };
  transaction<T>(work: () => T): { immediate(): T };
}

const SQLITE_SPELLING: Pick<SqlSpelling, 'nowSql' | 'dueBySql'> = {
  /**
   * SQLite has no server: 'now' is the clock of the machine it runs on, shared by every process that
   * can open the database file (they are on that machine), and the same within one statement.
   */
  nowSql: "CAST(unixepoch('subsec') * 1000 AS INTEGER)",
  /**
   * The pass start alone: it was read from this very clock (an embedded database's clock is the
   * process's, see DatabaseClock), so it never exceeds now; and a bare parameter keeps SQLite's
   * planner on the claim-order index (an expression there makes it sort a range of the due index).
   */
  dueBySql: ':dueBy',
};

/**
 * The claim as one UPDATE … RETURNING: the inner SELECT picks the oldest due rows of the queue
 * through the claim-order index. SQLite has one writer at a time: the statement takes the write
 * lock when it starts (like BEGIN IMMEDIATE) and selects and leases the rows inside that lock, so two
 * processes on one database file can never lease the same row; busy_timeout makes the loser wait
 * its turn.
 */
export function sqliteClaimStatement({
  pending,
  queues,
}: Pick<WorkerTables, 'pending' | 'queues'>): NamedStatement<ClaimParameters> {
  return namedStatement(
    `UPDATE ${pending} SET ${claimAssignments(SQLITE_SPELLING)} WHERE id IN (` +
      `SELECT id FROM ${pending} WHERE queue_name = :queueName AND ${claimableCondition(SQLITE_SPELLING)} ` +
      `AND ${notPausedCondition(queues)} ` +
      `ORDER BY ${CLAIM_ORDER} LIMIT :limit) RETURNING ${CLAIMED_COLUMNS}`,
  );
}

/**
 * json_type() tells the field's JSON type ('text', 'integer', 'real', 'true', 'false', 'null'), so
 * equality is typed (1 is not "1", true is not 1). json_type and json_extract raise an error on a
 * payload that does not parse: CASE checks json_valid() first, and such a row matches nothing.
 */
function payloadFieldEquals(key: string, value: PayloadFieldValue): SqlStatement {
  const path = `$."${key}"`;
  const type = 'CASE WHEN json_valid(payload) THEN json_type(payload, ?) END';
  const field = 'CASE WHEN json_valid(payload) THEN json_extract(payload, ?) END';
  if (value === null) return { sql: `${type} = 'null'`, parameters: [path] };
  if (typeof value === 'boolean') return { sql: `${type} = ?`, parameters: [path, String(value)] };
  const types = typeof value === 'string' ? "'text'" : "'integer', 'real'";
  return { sql: `${type} IN (${types}) AND ${field} = ?`, parameters: [path, path, value] };
}

/** SQLite's columns have no declared type in a UNION: NULL matches anything. */
function nullOf(): string {
  return 'NULL';
}

/** SQLite (better-sqlite3), the embedded database: one writer, one TypeORM connection per process. */
export class SqliteWorkerDialect implements WorkerDialect {
  /** What this database can do, known from its type alone (see capabilitiesOf). */
  static readonly capabilities: StorageCapabilities = {
    // TypeORM runs every better-sqlite3 query on one shared connection: see StorageCapabilities.
    joinsCallerTransaction: false,
    canListen: false,
    returnsInsertedIds: true,
    embeddedClock: true,
  };
  readonly capabilities = SqliteWorkerDialect.capabilities;
  /** BEGIN IMMEDIATE already holds the file's write lock. */
  readonly lockRowsClause = '';
  readonly lockSkippingClause = '';
  readonly claimIndexHint = '';
  readonly unflushedCommit = undefined;
  readonly updateReturns = true;
  /** ON CONFLICT … DO UPDATE / DO NOTHING (see onConflictUpsert). */
  readonly upsertRows = onConflictUpsert;
  /** SQLITE_MAX_VARIABLE_NUMBER of the SQLite that better-sqlite3 bundles. */
  readonly maxParameters = 32_766;
  readonly dueIndexHint = '';
  readonly nowSql = SQLITE_SPELLING.nowSql;
  /** ON CONFLICT … DO UPDATE SET c = t.c + excluded.c (see onConflictAddingUpsert). */
  readonly addingUpsert = onConflictAddingUpsert;
  /** A derived table of literal rows: VALUES rows (see valuesRowsTable). */
  readonly rowsTable = valuesRowsTable;
  /** Pruning's bounded DELETE (see sql/prune.ts). */
  readonly boundedDelete = deleteThroughKeySubquery;

  /**
   * The history INSERT returns what it copied (SQLite 3.35+): nothing else writes between the
   * statements of atomically()'s immediate transaction, so the move needs no locking read.
   */
  readonly historyInsertReturns = true;
  readonly dueBySql = SQLITE_SPELLING.dueBySql;
  readonly payloadFieldEquals = payloadFieldEquals;
  readonly nullOf = nullOf;
  private readonly claimStatement: NamedStatement<ClaimParameters>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: WorkerTables,
  ) {
    this.claimStatement = sqliteClaimStatement(tables);
  }

  claim(parameters: ClaimParameters): Promise<RawWorkerRow[]> {
    const { sql, parameters: values } = this.claimStatement.bind(parameters);
    return this.dataSource.query<RawWorkerRow[]>(sql, values);
  }

  /** The limited claim (sql/limited-claim.ts) in one transaction of atomically(). */
  claimLimited(parameters: ClaimParameters, flow: ClaimFlowLimits): Promise<LimitedClaimResult> {
    // The busy wait for the write lock (BEGIN IMMEDIATE) comes before the script's first statement,
    // which reads now after it. SQLite's clock is this process's: the wait is measured from here.
    const waitingSince = Date.now();
    return this.atomically(limitedClaim(this.tables, this, parameters, flow, waitingSince));
  }

  /** RETURNING id: the new ids as rows. */
  pendingInsert(insert: SqlStatement): SqlStatement {
    return { sql: `${insert.sql} RETURNING id`, parameters: insert.parameters };
  }

  /** ON CONFLICT DO NOTHING RETURNING id: a taken key returns no row. */
  pendingInsertUnlessTaken(insert: SqlStatement): SqlStatement {
    return this.pendingInsert({ sql: `${insert.sql} ON CONFLICT DO NOTHING`, parameters: insert.parameters });
  }

  async insertPending(manager: EntityManager, row: Record<string, unknown>): Promise<string | undefined> {
    const insert = insertUnlessTakenStatement(this.tables.pending, row, (name) => this.dataSource.driver.escape(name));
    const [inserted] = await this.query(this.pendingInsert(insert), manager);
    return inserted === undefined ? undefined : String(inserted.id);
  }

  query(statement: SqlStatement, manager: EntityManager = this.dataSource.manager): Promise<RawWorkerRow[]> {
    return manager.query<RawWorkerRow[]>(statement.sql, statement.parameters);
  }

  execute(statement: SqlStatement, manager: EntityManager = this.dataSource.manager): Promise<StatementResult> {
    return runOne(manager, statement);
  }

  /**
   * The model API's writes through an EntityManager the application passes (insertMany, insertNewRows,
   * a failed model's insert): they run on TypeORM's one shared connection, in whatever transaction it
   * has. Dispatch never comes here with a caller's manager (joinsCallerTransaction is false).
   */
  within<T>(manager: EntityManager, work: AtomicWork<T>): Promise<T> {
    return runWithin(manager, work);
  }

  /**
   * TypeORM runs every better-sqlite3 query on one shared connection, so a TypeORM transaction spans
   * whatever else the process awaits meanwhile (other lanes, dispatches). better-sqlite3's own
   * transaction runs synchronously: nothing can interleave with it, and BEGIN IMMEDIATE holds the
   * file's write lock against other processes from the first statement.
   */
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
}
