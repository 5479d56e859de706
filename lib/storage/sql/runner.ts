import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import type { IsolationLevel } from 'typeorm/driver/types/IsolationLevel.js';
import { WorkerError } from '../../errors/worker.error.js';
import { needsOpenTransaction } from '../../worker.messages.js';
import type { RawWorkerRow } from '../worker-row.js';
import type { AtomicWork, SqlStatement, StatementResult } from './statement.js';

/** Turns the `?` placeholders of a statement into the dialect's own (identity where they are `?`). */
type Spelling = (sql: string) => string;

const asWritten: Spelling = (sql) => sql;

/** Runs one statement on `runner` and reports rows, changed rows and (MySQL) the first inserted id. */
async function runStatement(runner: QueryRunner, statement: SqlStatement, spell: Spelling): Promise<StatementResult> {
  const result = await runner.query(spell(statement.sql), statement.parameters, true);
  const insertId = (result.raw as { insertId?: number | string } | undefined)?.insertId;
  return {
    rows: Array.isArray(result.records) ? (result.records as RawWorkerRow[]) : [],
    affected: result.affected ?? 0,
    insertId: insertId === undefined ? undefined : String(insertId),
  };
}

/**
 * One statement outside any transaction (or in `manager`'s), with its full result: what
 * EntityManager.query does (a query runner taken from the pool for the statement and released),
 * but reporting the rows it changed too, on every driver.
 */
export async function runOne(
  manager: EntityManager,
  statement: SqlStatement,
  spell: Spelling = asWritten,
): Promise<StatementResult> {
  const runner = manager.queryRunner ?? manager.connection.createQueryRunner();
  try {
    return await runStatement(runner, statement, spell);
  } finally {
    if (!manager.queryRunner) await runner.release();
  }
}

/**
 * Feeds `work` the results of its statements, run one after another on `runner` (in whatever
 * transaction it has).
 */
export async function runSteps<T>(runner: QueryRunner, work: AtomicWork<T>, spell: Spelling = asWritten): Promise<T> {
  const steps = work();
  let step = steps.next();
  while (!step.done) step = steps.next(await runStatement(runner, step.value, spell));
  return step.value;
}

/** Runs `work` on the query runner of a caller's open transaction (`manager`), in that transaction. */
export function runWithin<T>(manager: EntityManager, work: AtomicWork<T>, spell?: Spelling): Promise<T> {
  if (!manager.queryRunner) throw new WorkerError(needsOpenTransaction());
  return runSteps(manager.queryRunner, work, spell);
}

/** How `atomicallyOnServer` runs: placeholder spelling, isolation level, and which errors it retries. */
export interface ServerTransactionSettings {
  /** Turns `?` placeholders into the dialect's own. */
  spell?: Spelling;
  isolation?: IsolationLevel;
  /** An error after which the whole work runs again (a deadlock victim), up to `attempts` times in all. */
  retryable?: (error: unknown) => boolean;
  attempts?: number;
}

/**
 * A transaction on a server: one pooled connection, BEGIN … COMMIT, rolled back when the work or a
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
  spell: Spelling | undefined,
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
      // The work's own error is what the caller (and the deadlock retry) must see, not a failed
      // ROLLBACK's: the connection is released, and a broken one leaves the pool, either way.
      if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
      throw error;
    }
  } finally {
    await runner.release();
  }
}

/**
 * Feeds `work` the results of its statements, each run on its own by `execute`, in no transaction:
 * for the model API's single-statement writes (an UPDATE, a DELETE, an INSERT), which were never
 * worth a BEGIN and COMMIT.
 */
export async function runEach<T>(
  work: AtomicWork<T>,
  execute: (statement: SqlStatement) => Promise<StatementResult>,
): Promise<T> {
  const steps = work();
  let step = steps.next();
  while (!step.done) step = steps.next(await execute(step.value));
  return step.value;
}
