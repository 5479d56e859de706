import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { IsolationLevel } from 'typeorm/driver/types/IsolationLevel.js';
import { WorkerError } from '../../errors/worker.error.js';
import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { RawWorkerRow } from '../worker-row.js';
import { insertRow } from '../worker-statements.js';

/** One SQL statement with `?` placeholders (each dialect spells them its own way). */
export interface SqlStatement {
  sql: string;
  parameters: unknown[];
}

/** What a statement gave back: the rows it returned, how many rows it changed, and (MySQL) the first id it inserted. */
export interface StatementResult {
  rows: RawWorkerRow[];
  affected: number;
  insertId?: string;
}

/**
 * Work that must happen in one transaction, written once for every database as a generator: it
 * yields statements and receives their results. SQLite runs it synchronously inside one
 * better-sqlite3 transaction, the servers on one pooled connection between BEGIN and COMMIT.
 */
export type AtomicWork<T> = () => Generator<SqlStatement, T, StatementResult>;

/** What differs between databases: how due rows are leased, and how statements run atomically. */
export interface WorkerDialect {
  /**
   * Leases up to `request.limit` claimable rows of one queue to `leaseToken`: attempts + 1, lease
   * columns set, lease_expires_at = database now + leaseMs. The due time (available_at) and priority
   * are left as they are, so a row whose lease expires is claimable again in its original place.
   * Returns the claimed rows, in any order.
   */
  claim(request: ClaimRequest, leaseToken: string): Promise<RawWorkerRow[]>;
  /**
   * The database's own clock as epoch milliseconds, an SQL expression: the one place each dialect
   * spells "now". Every lease decision (claimable, expired, renewed) is computed with it inside the
   * statement, so a worker whose clock is off can neither take a live lease nor wait for due work.
   * It is stable within a statement (statement start on PostgreSQL and MySQL/MariaDB, the step on
   * SQLite), so it can bound an index range.
   */
  readonly nowSql: string;
  /**
   * "Due by": the pass start (a `?` parameter) capped at the database's now, as the one bound on
   * available_at of the claim and the due count (two bounds tempt planners into a sort).
   */
  readonly dueBySql: string;
  /** True where the database runs inside this process (SQLite): its clock is the machine's. */
  readonly embedded: boolean;
  /**
   * Inserts a pending row ({ column: value }) through `manager` and resolves to its id, or to
   * undefined when the row's (queue_name, unique_key) is taken: the insert then changes nothing and
   * does not abort the manager's transaction.
   */
  insertPending(manager: EntityManager, row: Record<string, unknown>): Promise<string | undefined>;
  /** Runs one statement (`?` placeholders) through `manager` (default: outside any transaction); resolves to the rows it returned. */
  query(statement: SqlStatement, manager?: EntityManager): Promise<RawWorkerRow[]>;
  /** Runs `work` in one transaction that nothing else of this process can join; rolls back if it throws. */
  atomically<T>(work: AtomicWork<T>): Promise<T>;
  /** Appended to a SELECT inside `atomically` to lock the rows it reads ('' where the transaction already excludes writers). */
  readonly lockRowsClause: string;
  /** Runs `work` through a transaction's EntityManager (the caller's transaction), on its query runner. */
  within<T>(manager: EntityManager, work: AtomicWork<T>): Promise<T>;
  /** Placed after the table in "how many are due" reads so they take one range of the due index. */
  readonly dueIndexHint: string;
  /** Placed after the table in the claim's SELECT so it walks the claim-order index (no sort). */
  readonly claimIndexHint: string;
  /** Bind parameters one statement may carry: bounds the rows of a multi-row INSERT. */
  readonly maxParameters: number;
  /**
   * A multi-row INSERT made to return the new ids as rows (PostgreSQL, SQLite), or left as it is
   * where insertId tells them (MySQL). On PostgreSQL it also wakes listening workers.
   */
  returningIds(insertSql: string): string;
  /** True when returningIds() makes the INSERT return its ids as rows. */
  readonly returnsIds: boolean;
  /**
   * Where the database takes whole columns as arrays (PostgreSQL: INSERT … SELECT FROM unnest), one
   * statement for any number of new pending rows, returning their ids as rows; else undefined.
   */
  arrayInsert?(columns: string[], rows: Record<string, unknown>[]): SqlStatement;
}

export type SupportedDatabaseType = 'better-sqlite3' | 'postgres' | 'mysql' | 'mariadb';
export const SUPPORTED_DATABASE_TYPES: readonly SupportedDatabaseType[] = [
  'better-sqlite3',
  'postgres',
  'mysql',
  'mariadb',
];

export class UnsupportedDatabaseError extends WorkerError {
  constructor(type: string) {
    super(
      `nestjs-workers has no claim path for TypeORM database type "${type}" (supported: ${SUPPORTED_DATABASE_TYPES.join(', ')})`,
    );
  }
}

export function isSupportedDatabaseType(type: unknown): type is SupportedDatabaseType {
  return SUPPORTED_DATABASE_TYPES.includes(type as SupportedDatabaseType);
}

/**
 * The rows a claim may take, after `queue_name = ?`: due by the pass start (the `?`) and by the
 * database's clock, not cancelled, and not under a live lease. A row keeps its due time while leased
 * (lease_expires_at holds the lease), so an abandoned row is claimable again in its original place
 * in the claim order, ahead of any backlog due after it. lease_expires_at is in no index: the claim
 * walks the claim-order index and passes over the few rows running now.
 */
export function claimableCondition({ nowSql, dueBySql }: Pick<WorkerDialect, 'nowSql' | 'dueBySql'>): string {
  return `available_at <= ${dueBySql} AND deleted_at IS NULL AND (lease_expires_at IS NULL OR lease_expires_at <= ${nowSql})`;
}

/**
 * The claim as one UPDATE … RETURNING (PostgreSQL, SQLite): the inner SELECT picks the oldest due
 * rows of the queue through the claim-order index, `lockClause` says how it locks them, and
 * `idsIn(select)` how the UPDATE takes the ids it returns, `indexHint` (after the table) which index
 * it walks. Its parameters are `claimParameters()`, in
 * that order (`?` placeholders, spelled by the dialect's query()). The UPDATE changes no indexed
 * column: on PostgreSQL a claim is a HOT update.
 */
export function updateReturningClaimSql(
  pending: string,
  dialect: Pick<WorkerDialect, 'nowSql' | 'dueBySql'>,
  {
    lockClause = '',
    indexHint = '',
    idsIn = (select: string) => `id IN (${select})`,
  }: { lockClause?: string; indexHint?: string; idsIn?: (select: string) => string } = {},
): string {
  const { nowSql } = dialect;
  const select =
    `SELECT id FROM ${pending}${indexHint} WHERE queue_name = ? AND ${claimableCondition(dialect)} ` +
    `ORDER BY priority, available_at, id LIMIT ?${lockClause}`;
  return (
    `UPDATE ${pending} SET attempts = attempts + 1, locked_by = ?, lease_token = ?, ` +
    `lease_expires_at = ${nowSql} + ?, updated_at = ${nowSql} ` +
    `WHERE ${idsIn(select)} RETURNING *`
  );
}

export function claimParameters(request: ClaimRequest, leaseToken: string): unknown[] {
  return [request.workerId, leaseToken, request.leaseMs, request.queueName, request.dueBy.getTime(), request.limit];
}

/**
 * insertPending() where INSERT … ON CONFLICT DO NOTHING exists (PostgreSQL, SQLite): the row's id,
 * or undefined when its unique key is taken (nothing inserted, the transaction goes on).
 */
export async function insertUnlessTaken(
  dialect: WorkerDialect,
  pending: string,
  row: Record<string, unknown>,
  escape: (name: string) => string,
  manager: EntityManager,
): Promise<string | undefined> {
  const { sql, parameters } = insertRow(pending, row, escape);
  const [inserted] = await dialect.query(
    { sql: dialect.returningIds(`${sql} ON CONFLICT DO NOTHING`), parameters },
    manager,
  );
  return inserted === undefined ? undefined : String(inserted.id);
}

/** The channel PostgreSQL workers LISTEN on; the payload is the queue name. */
export const WAKEUP_CHANNEL = 'nestjs_workers';

/** Feeds `work` the results of its statements, run one after another on `runner` (in whatever transaction it has). */
export async function runSteps<T>(
  runner: QueryRunner,
  work: AtomicWork<T>,
  spell: (sql: string) => string = (sql) => sql,
): Promise<T> {
  const steps = work();
  let step = steps.next();
  while (!step.done) {
    const result = await runner.query(spell(step.value.sql), step.value.parameters, true);
    const insertId = (result.raw as { insertId?: number | string } | undefined)?.insertId;
    step = steps.next({
      rows: Array.isArray(result.records) ? (result.records as RawWorkerRow[]) : [],
      affected: result.affected ?? 0,
      insertId: insertId === undefined ? undefined : String(insertId),
    });
  }
  return step.value;
}

/** `within` for every dialect: the manager must belong to an open transaction (it has a query runner). */
export function runWithin<T>(manager: EntityManager, work: AtomicWork<T>, spell?: (sql: string) => string): Promise<T> {
  if (!manager.queryRunner)
    throw new WorkerError(
      'This needs the EntityManager of an open transaction (dataSource.transaction((manager) => …))',
    );
  return runSteps(manager.queryRunner, work, spell);
}

/** How `atomically` runs on a server: placeholder spelling, isolation level, and which errors it retries. */
export interface ServerTransactionSettings {
  /** Turns `?` placeholders into the dialect's own. */
  spell?: (sql: string) => string;
  isolation?: IsolationLevel;
  /** An error after which the whole work runs again (a deadlock victim), up to `attempts` times in all. */
  retryable?: (error: unknown) => boolean;
  attempts?: number;
}

/**
 * `atomically` on a server: one pooled connection, BEGIN … COMMIT, rolled back when the work or a
 * statement throws. The work is a generator function, so a retry simply runs it again from the start.
 */
export async function atomicallyOnServer<T>(
  dataSource: DataSource,
  work: AtomicWork<T>,
  settings: ServerTransactionSettings = {},
): Promise<T> {
  const { spell, isolation, retryable = () => false, attempts = 1 } = settings;
  for (let attempt = 1; ; attempt++) {
    try {
      return await runInTransaction(dataSource, work, spell, isolation);
    } catch (error) {
      if (attempt >= attempts || !retryable(error)) throw error;
    }
  }
}

async function runInTransaction<T>(
  dataSource: DataSource,
  work: AtomicWork<T>,
  spell: ((sql: string) => string) | undefined,
  isolation: IsolationLevel | undefined,
): Promise<T> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    await runner.startTransaction(isolation);
    try {
      const value = await runSteps(runner, work, spell);
      await runner.commitTransaction();
      return value;
    } catch (error) {
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      throw error;
    }
  } finally {
    await runner.release();
  }
}
