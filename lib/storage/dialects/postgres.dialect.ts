import type { DataSource, EntityManager } from 'typeorm';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import { WorkerEntity } from '../entities/worker.entity.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import {
  type AtomicWork,
  atomicallyOnServer,
  claimParameters,
  insertUnlessTaken,
  runWithin,
  type SqlStatement,
  WAKEUP_CHANNEL,
  updateReturningClaimSql,
  type WorkerDialect,
} from './worker-dialect.js';

/** `?` → `$1`, `$2`, … (the statements of this package never contain a literal question mark). */
function numberedPlaceholders(sql: string): string {
  let position = 0;
  return sql.replace(/\?/g, () => `$${++position}`);
}

/**
 * One statement per batch: the inner SELECT walks the due index oldest first and locks what it
 * takes; SKIP LOCKED makes concurrent workers pass over each other's rows instead of waiting.
 */
export class PostgresWorkerDialect implements WorkerDialect {
  readonly lockRowsClause = ' FOR UPDATE';
  readonly maxParameters = 65_535;
  readonly dueIndexHint = '';
  readonly claimIndexHint = '';
  readonly returnsIds = true;
  readonly embedded = false;
  /**
   * statement_timestamp(): the server's clock when the statement began, stable within it, so it can
   * bound an index range (clock_timestamp() is volatile and would turn the range into a filter).
   */
  readonly nowSql = 'floor(extract(epoch from statement_timestamp()) * 1000)::bigint';
  readonly dueBySql = `LEAST(?::bigint, ${this.nowSql})`;
  // Wrapped in a CTE so the driver reports a SELECT and TypeORM returns the rows alone.
  private readonly claimSql: string;

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
    const update = updateReturningClaimSql(tables.pending, this, {
      lockClause: ' FOR UPDATE SKIP LOCKED',
      // An array of the locked ids, not IN (subquery): the planner then fetches them by primary key
      // instead of hashing them and scanning the whole table (dead rows included) for matches.
      idsIn: (select) => `id = ANY(ARRAY(${select}))`,
    });
    // The claim's commit does not wait for its WAL flush (set_config(…, true) lasts until this
    // statement's own transaction ends): it saves a disk flush before every batch starts. A database
    // crash in the next few hundred ms may forget the lease and the attempt count; the row is then
    // claimable again and the worker's fenced writes change nothing: at-least-once still holds. Every
    // later synchronous commit (the completion's, the dispatch's) flushes it anyway.
    this.claimSql = numberedPlaceholders(
      `WITH claimed AS (${update}) SELECT claimed.* FROM claimed ` +
        "WHERE (SELECT set_config('synchronous_commit', 'off', true)) IS NOT NULL",
    );
  }

  claim(request: ClaimRequest, leaseToken: string): Promise<RawWorkerRow[]> {
    return this.dataSource.query<RawWorkerRow[]>(this.claimSql, claimParameters(request, leaseToken));
  }

  /**
   * The INSERT's rows announce their queues with pg_notify: delivered when the transaction commits
   * (never for a rollback), one notification per queue and transaction however many rows (PostgreSQL
   * folds identical ones), so a bulk insert wakes each queue's workers once.
   */
  returningIds(insertSql: string): string {
    return `WITH inserted AS (${insertSql} RETURNING id, queue_name) SELECT id, pg_notify('${WAKEUP_CHANNEL}', queue_name) AS woke FROM inserted`;
  }

  /**
   * One statement for all rows: each column whose value differs between rows is a typed array,
   * unnest()ed into rows, and a column that is the same in every row (queue, event name, times, …
   * in a typical bulk dispatch) one parameter. Binding a few arrays instead of a parameter per row
   * and column is several times faster. Notifies each queue once.
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
        ? `unnest(${varying.map((column) => `?::${typeOf(column)}[]`).join(', ')}) AS source(${varying.map(escape).join(', ')})`
        : 'generate_series(1, ?)';
    return {
      sql:
        `WITH inserted AS (INSERT INTO ${this.tables.pending} (${[...same, ...varying].map(escape).join(', ')}) ` +
        `SELECT ${[...same.map((column) => `?::${typeOf(column)}`), ...varying.map((column) => `source.${escape(column)}`)].join(', ')} FROM ${source} RETURNING id, queue_name), ` +
        `woke AS (SELECT pg_notify('${WAKEUP_CHANNEL}', queue_name) FROM (SELECT DISTINCT queue_name FROM inserted) queues) ` +
        'SELECT id, (SELECT count(*) FROM woke) AS woke FROM inserted',
      parameters: [
        ...same.map((column) => first[column] ?? null),
        ...(varying.length > 0 ? varying.map((column) => rows.map((row) => row[column] ?? null)) : [rows.length]),
      ],
    };
  }

  insertPending(manager: EntityManager, row: Record<string, unknown>): Promise<string | undefined> {
    return insertUnlessTaken(this, this.tables.pending, row, (name) => this.dataSource.driver.escape(name), manager);
  }

  query(statement: SqlStatement, manager: EntityManager = this.dataSource.manager): Promise<RawWorkerRow[]> {
    return manager.query<RawWorkerRow[]>(numberedPlaceholders(statement.sql), statement.parameters);
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
