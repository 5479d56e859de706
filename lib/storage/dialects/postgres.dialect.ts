import type { DataSource, EntityManager } from 'typeorm';
import { WorkerEntity } from '../entities/worker.entity.js';
import {
  HISTORY_COLUMNS,
  historyCopiedColumns,
  type HistoryRow,
  historyValueColumns,
  ID_MARK,
  stateLiteral,
  valuesRowsTable,
} from '../sql/complete-to-history.js';
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
import { deleteThroughKeySubquery } from '../sql/prune.js';
import { type NamedStatement, namedStatement } from '../sql/named-parameters.js';
import { atomicallyOnServer, runOne, runWithin } from '../sql/runner.js';
import { onConflictAddingUpsert } from '../sql/throughput.js';
import type { AtomicWork, SqlSpelling, SqlStatement, StatementResult } from '../sql/statement.js';
import type { PayloadFieldValue } from '../sql/job-rows.js';
import type { ClaimFlowLimits } from '../../interfaces/flow-control.interface.js';
import { limitedClaim, type LimitedClaimResult } from '../sql/limited-claim.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { StorageCapabilities, WorkerDialect } from './worker-dialect.js';

/** The channel PostgreSQL workers LISTEN on (see postgres-wakeups); the payload is the queue name. */
export const WAKEUP_CHANNEL = 'nestjs_workers';

/** `?` → `$1`, `$2`, … (the statements of this package never contain a literal question mark). */
function numberedPlaceholders(sql: string): string {
  let position = 0;
  return sql.replace(/\?/g, () => `$${++position}`);
}

/**
 * statement_timestamp(): the server's clock when the statement began, stable within it, so it can
 * bound an index range (clock_timestamp() is volatile and would turn the range into a filter).
 */
const NOW_SQL = 'floor(extract(epoch from statement_timestamp()) * 1000)::bigint';
const POSTGRES_SPELLING: Pick<SqlSpelling, 'nowSql' | 'dueBySql'> = {
  nowSql: NOW_SQL,
  dueBySql: `LEAST(:dueBy::bigint, ${NOW_SQL})`,
};

/**
 * The claim, one statement per batch: the inner SELECT walks the claim-order index, oldest first,
 * and locks what it takes; SKIP LOCKED makes concurrent workers pass over each other's rows instead
 * of waiting. The UPDATE changes no indexed column (a HOT update).
 */
export function postgresClaimStatement({
  pending,
  queues,
}: Pick<WorkerTables, 'pending' | 'queues'>): NamedStatement<ClaimParameters> {
  const select =
    `SELECT id FROM ${pending} WHERE queue_name = :queueName AND ${claimableCondition(POSTGRES_SPELLING)} ` +
    `AND ${notPausedCondition(queues)} ` +
    `ORDER BY ${CLAIM_ORDER} LIMIT :limit FOR UPDATE SKIP LOCKED`;
  return namedStatement(
    // Wrapped in a CTE so the driver reports a SELECT and TypeORM returns the rows alone.
    `WITH claimed AS (UPDATE ${pending} SET ${claimAssignments(POSTGRES_SPELLING)} ` +
      // An array of the locked ids, not IN (subquery): the planner then fetches them by primary key
      // instead of hashing them and scanning the whole table (dead rows included) for matches.
      `WHERE id = ANY(ARRAY(${select})) RETURNING ${CLAIMED_COLUMNS}) SELECT claimed.* FROM claimed ` +
      // The claim's commit does not wait for its WAL flush (set_config(…, true) lasts until this
      // statement's own transaction ends): it saves a disk flush before every batch starts. A
      // database crash in the next few hundred ms may forget the lease and the attempt count; the
      // row is then claimable again and the worker's fenced writes change nothing: at-least-once
      // still holds. Every later synchronous commit (the completion's, the dispatch's) flushes it.
      "WHERE (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
    (position) => `$${position}`,
  );
}

/**
 * An INSERT into the pending table that wakes the workers of its rows' queues: the rows announce
 * their queues with pg_notify, delivered when the transaction commits (never for a rollback), one
 * notification per queue and transaction however many rows (PostgreSQL folds identical ones), so a
 * bulk insert wakes each queue's workers once. Returns the new ids as rows.
 */
function insertWakingWorkers(insert: SqlStatement): SqlStatement {
  return {
    sql:
      `WITH inserted AS (${insert.sql} RETURNING id, queue_name) ` +
      `SELECT id, pg_notify('${WAKEUP_CHANNEL}', queue_name) AS woke FROM inserted`,
    parameters: insert.parameters,
  };
}

/**
 * Containment of `{ key: value }` is typed equality of a top-level field for a scalar value (1 is not
 * "1", true is not 1, an array holding the value does not match), the operator a GIN index on
 * (payload::jsonb) could serve. PostgreSQL 15 has no guarded cast, so what jsonb would refuse is kept
 * from the cast, in a CASE (which evaluates in order): a payload that is not an object cannot hold
 * the field (a text that no longer parses rarely starts with "{"); a payload holding "\u0000" (the
 * serializer's escape of NUL, which jsonb refuses) is compared with NUL read as U+0001 on both sides.
 */
function payloadFieldEquals(key: string, value: PayloadFieldValue): SqlStatement {
  const filter = JSON.stringify({ [key]: value }).replaceAll(NUL_ESCAPE, NUL_STAND_IN);
  return {
    sql:
      "CASE WHEN left(payload, 1) <> '{' THEN false " +
      `WHEN strpos(payload, '${NUL_ESCAPE}') = 0 THEN payload::jsonb @> ?::jsonb ` +
      `ELSE replace(payload, '${NUL_ESCAPE}', '${NUL_STAND_IN}')::jsonb @> ?::jsonb END`,
    parameters: [filter, filter],
  };
}

/** JSON's escape of NUL, which jsonb refuses, and what the payload filter reads it as. */
const NUL_ESCAPE = '\\u0000';
const NUL_STAND_IN = '\\u0001';

/**
 * The move of a lease's finished rows to the history as ONE statement: the fenced DELETE … RETURNING
 * feeds the INSERT, so exactly the rows this lease still held are copied, in the statement's own
 * transaction (never copied twice, never lost), with no locking read and no BEGIN/COMMIT round trips.
 * A row found cancelled while it ran (deleted_at set) is recorded as 'cancelled' with why. The rows'
 * own values come as typed arrays, unnest()ed and joined by id, and only those that vary
 * (historyValueColumns): a batch of no-op events binds two arrays (ids, durations), whatever its size.
 */
export function postgresHistoryMove(
  tables: WorkerTables,
  leaseToken: string,
  rows: HistoryRow[],
  cancelledErrorOf: (id: string) => string,
): SqlStatement {
  const { state, texts } = historyValueColumns(rows);
  const [errorBefore, errorAfter] = cancelledErrorOf(ID_MARK).split(ID_MARK);
  const arrays: [string, string, unknown[]][] = [
    ['id', 'bigint', rows.map((row) => row.id)],
    ['duration_ms', 'bigint', rows.map((row) => Math.max(0, Math.round(row.durationMs)))],
    ...(state ? [] : [['state', 'text', rows.map((row) => row.state)] as [string, string, unknown[]]]),
    ...texts.map((column): [string, string, unknown[]] => [column, 'text', rows.map((row) => row[column])]),
  ];
  const has = (column: 'progress' | 'result' | 'error'): boolean => texts.includes(column);
  const recordedState = state ? stateLiteral(state) : 'v.state';
  return {
    sql:
      `WITH moved AS (DELETE FROM ${tables.pending} WHERE lease_token = ? AND id = ANY(?::bigint[]) ` +
      'RETURNING id, queue_name, event_name, payload, attempts, retries, priority, unique_key, progress, ' +
      'created_at, available_at, started_at, locked_by, deleted_at) ' +
      `INSERT INTO ${tables.history} (${HISTORY_COLUMNS}) SELECT ${historyCopiedColumns('m')}, ` +
      `CASE WHEN m.deleted_at IS NOT NULL THEN 'cancelled' ELSE ${recordedState} END, ` +
      `${has('progress') ? 'COALESCE(v.progress, m.progress)' : 'm.progress'}, ` +
      `${has('result') ? 'v.result' : 'NULL'}, ` +
      // Cancelled while it ran, unknown to its worker: why, as EventCancelledError says it.
      `CASE WHEN m.deleted_at IS NOT NULL AND ${recordedState} <> 'cancelled' THEN ?::text || m.id::text || ?::text ` +
      `ELSE ${has('error') ? 'v.error' : 'NULL'} END, ` +
      `m.created_at, m.available_at, m.started_at, ${NOW_SQL}, v.duration_ms, m.locked_by, ${NOW_SQL} ` +
      `FROM moved m JOIN unnest(${arrays.map(([, type]) => `?::${type}[]`).join(', ')}) ` +
      `AS v(${arrays.map(([column]) => column).join(', ')}) ON v.id = m.id ` +
      'RETURNING id, state',
    parameters: [
      leaseToken,
      rows.map((row) => row.id),
      errorBefore ?? '',
      errorAfter ?? '',
      ...arrays.map(([, , values]) => values),
    ],
  };
}

function nullOf(type: 'text' | 'bigint'): string {
  return `NULL::${type}`;
}

/** PostgreSQL: the claim as one UPDATE … RETURNING, array inserts, and NOTIFY wake-ups on every insert. */
export class PostgresWorkerDialect implements WorkerDialect {
  /** What this database can do, known from its type alone (see capabilitiesOf). */
  static readonly capabilities: StorageCapabilities = {
    joinsCallerTransaction: true,
    canListen: true,
    returnsInsertedIds: true,
    embeddedClock: false,
  };
  readonly capabilities = PostgresWorkerDialect.capabilities;
  readonly lockRowsClause = ' FOR UPDATE';
  readonly lockSkippingClause = ' FOR UPDATE SKIP LOCKED';
  readonly claimIndexHint = '';
  readonly updateReturns = true;
  /** set_config(…, true) lasts until the transaction ends (see postgresClaimStatement). */
  readonly unflushedCommit = "SELECT set_config('synchronous_commit', 'off', true)";
  /** ON CONFLICT … DO UPDATE / DO NOTHING (see onConflictUpsert). */
  readonly upsertRows = onConflictUpsert;
  readonly maxParameters = 65_535;
  readonly dueIndexHint = '';
  readonly nowSql = POSTGRES_SPELLING.nowSql;
  /** ON CONFLICT … DO UPDATE SET c = t.c + excluded.c (see onConflictAddingUpsert). */
  readonly addingUpsert = onConflictAddingUpsert;
  /** A derived table of literal rows: VALUES rows (see valuesRowsTable). */
  readonly rowsTable = valuesRowsTable;
  /** Pruning's bounded DELETE (see sql/prune.ts). */
  readonly boundedDelete = deleteThroughKeySubquery;

  /** The history move as one statement (see postgresHistoryMove). */
  readonly historyMoveStatement = postgresHistoryMove;
  readonly dueBySql = POSTGRES_SPELLING.dueBySql;
  readonly payloadFieldEquals = payloadFieldEquals;
  readonly nullOf = nullOf;
  private readonly claimStatement: NamedStatement<ClaimParameters>;

  /** PostgreSQL type of each pending-table column, for the arrays of arrayInsert(). */
  private readonly columnTypes: Map<string, string>;

  constructor(
    private readonly dataSource: DataSource,
    private readonly tables: WorkerTables,
  ) {
    this.columnTypes = new Map(
      dataSource
        .getMetadata(WorkerEntity)
        .columns.map((column) => [column.databaseName, arrayElementType(String(column.type))]),
    );
    this.claimStatement = postgresClaimStatement(tables);
  }

  claim(parameters: ClaimParameters): Promise<RawWorkerRow[]> {
    const { sql, parameters: values } = this.claimStatement.bind(parameters);
    return this.dataSource.query<RawWorkerRow[]>(sql, values);
  }

  /** The limited claim (sql/limited-claim.ts) in one transaction of atomically(). */
  claimLimited(parameters: ClaimParameters, flow: ClaimFlowLimits): Promise<LimitedClaimResult> {
    return this.atomically(limitedClaim(this.tables, this, parameters, flow));
  }

  pendingInsert(insert: SqlStatement): SqlStatement {
    return insertWakingWorkers(insert);
  }

  /** ON CONFLICT DO NOTHING inside the waking insert (see insertWakingWorkers): a taken key returns no row. */
  pendingInsertUnlessTaken(insert: SqlStatement): SqlStatement {
    return insertWakingWorkers({ sql: `${insert.sql} ON CONFLICT DO NOTHING`, parameters: insert.parameters });
  }

  /**
   * One statement for all rows: each column whose value differs between rows is a typed array,
   * unnest()ed into rows, and a column that is the same in every row (queue, event name, times, …
   * in a typical bulk dispatch) one parameter. Binding a few arrays instead of a parameter per row
   * and column is several times faster. Wakes the workers of each queue once (pg_notify per queue).
   */
  arrayInsert(columns: string[], rows: Record<string, unknown>[]): SqlStatement {
    const escape = (name: string): string => this.dataSource.driver.escape(name);
    const typeOf = (column: string): string => this.columnTypes.get(column) ?? 'text';
    const first = rows[0] ?? {};
    const varying = columns.filter((column) => rows.some((row) => (row[column] ?? null) !== (first[column] ?? null)));
    const same = columns.filter((column) => !varying.includes(column));
    // unnest() of no arrays is no rows: with every column the same, the row count comes from generate_series.
    const source =
      varying.length > 0
        ? `unnest(${varying.map((column) => `?::${typeOf(column)}[]`).join(', ')}) ` +
          `AS source(${varying.map(escape).join(', ')})`
        : 'generate_series(1, ?)';
    const values = [
      ...same.map((column) => `?::${typeOf(column)}`),
      ...varying.map((column) => `source.${escape(column)}`),
    ];
    return {
      sql:
        `WITH inserted AS (INSERT INTO ${this.tables.pending} (${[...same, ...varying].map(escape).join(', ')}) ` +
        `SELECT ${values.join(', ')} FROM ${source} RETURNING id, queue_name), ` +
        `woke AS (SELECT pg_notify('${WAKEUP_CHANNEL}', queue_name) ` +
        'FROM (SELECT DISTINCT queue_name FROM inserted) queues) ' +
        'SELECT id, (SELECT count(*) FROM woke) AS woke FROM inserted',
      parameters: [
        ...same.map((column) => first[column] ?? null),
        ...(varying.length > 0 ? varying.map((column) => rows.map((row) => row[column] ?? null)) : [rows.length]),
      ],
    };
  }

  async insertPending(manager: EntityManager, row: Record<string, unknown>): Promise<string | undefined> {
    const insert = insertUnlessTakenStatement(this.tables.pending, row, (name) => this.dataSource.driver.escape(name));
    const [inserted] = await this.query(this.pendingInsert(insert), manager);
    return inserted === undefined ? undefined : String(inserted.id);
  }

  query(statement: SqlStatement, manager: EntityManager = this.dataSource.manager): Promise<RawWorkerRow[]> {
    return manager.query<RawWorkerRow[]>(numberedPlaceholders(statement.sql), statement.parameters);
  }

  execute(statement: SqlStatement, manager: EntityManager = this.dataSource.manager): Promise<StatementResult> {
    return runOne(manager, statement, numberedPlaceholders);
  }

  atomically<T>(work: AtomicWork<T>): Promise<T> {
    return atomicallyOnServer(this.dataSource, work, { spell: numberedPlaceholders });
  }

  within<T>(manager: EntityManager, work: AtomicWork<T>): Promise<T> {
    return runWithin(manager, work, numberedPlaceholders);
  }
}

/** The element type of an array parameter for a column of this TypeORM type. */
function arrayElementType(type: string): string {
  if (type === 'int' || type === 'integer') return 'int';
  if (type === 'bigint') return 'bigint';
  return 'text';
}
