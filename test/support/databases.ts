/**
 * The test databases: SQLite always; PostgreSQL and MariaDB/MySQL when their URLs are set (`.ci/run`
 * always sets them; with CI=true a missing URL fails the run instead of shrinking it). Also one server
 * database per Jest worker, emptied tables, normalized rows and open-connection counts.
 */
import { existsSync } from 'node:fs';
import { DataSource } from 'typeorm';
import type { WorkerModuleOptions } from '../../lib/index.js';

export const POSTGRES_URL_VARIABLE = 'WORKERS_TEST_POSTGRES_URL';
export const MYSQL_URL_VARIABLE = 'WORKERS_TEST_MYSQL_URL';

/** MariaDB is driven as TypeORM's `mariadb` type, which knows how MariaDB reports column defaults. */
export type TestDatabaseType = 'better-sqlite3' | 'postgres' | 'mariadb';

export interface TestDatabase {
  /** Shown in test names. */
  name: 'SQLite' | 'PostgreSQL' | 'MariaDB';
  type: TestDatabaseType;
  /** The server URL (for server databases), pointing at the server's default database. */
  serverUrl?: string;
}

export const SQLITE: TestDatabase = { name: 'SQLite', type: 'better-sqlite3' };

/** The server databases whose URLs are set; with CI=true both must be. */
export function serverDatabases(): TestDatabase[] {
  const databases: TestDatabase[] = [];
  const postgres = process.env[POSTGRES_URL_VARIABLE];
  const mysql = process.env[MYSQL_URL_VARIABLE];
  if (process.env.CI === 'true') {
    for (const [variable, value] of [
      [POSTGRES_URL_VARIABLE, postgres],
      [MYSQL_URL_VARIABLE, mysql],
    ]) {
      if (!value) throw new Error(`${variable} is not set: in CI every database suite must run (see .ci/run)`);
    }
  }
  if (postgres) databases.push({ name: 'PostgreSQL', type: 'postgres', serverUrl: postgres });
  if (mysql) databases.push({ name: 'MariaDB', type: 'mariadb', serverUrl: mysql });
  return databases;
}

export function testDatabases(): TestDatabase[] {
  return [SQLITE, ...serverDatabases()];
}

/** `url` with its database (path) replaced. */
export function withDatabaseName(url: string, databaseName: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${databaseName}`;
  return parsed.toString();
}

const created = new Set<string>();

/**
 * (Re)creates the database `databaseName` on the server, once per test file, and returns its URL.
 * Starting from an empty database means the tables are always those of the code under test, whatever
 * an earlier run on the same server left (synchronize does not alter every difference, collations say).
 */
export async function ensureServerDatabase(database: TestDatabase, databaseName: string): Promise<string> {
  const serverUrl = database.serverUrl!;
  const url = withDatabaseName(serverUrl, databaseName);
  if (created.has(url)) return url;
  const admin = await new DataSource({ type: database.type as 'postgres' | 'mariadb', url: serverUrl }).initialize();
  try {
    if (database.type === 'postgres') {
      await admin.query(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${databaseName}"`);
    } else {
      await admin.query(`DROP DATABASE IF EXISTS \`${databaseName}\``);
      await admin.query(`CREATE DATABASE \`${databaseName}\``);
    }
  } finally {
    await admin.destroy();
  }
  created.add(url);
  return url;
}

/**
 * The server database of one Jest worker for `purpose` ('test', 'mp'). WORKERS_TEST_DATABASE_PREFIX
 * (default nestjs_workers) keeps two test runs on one server, from two checkouts, out of each other's databases.
 */
export function workerDatabaseName(purpose: string): string {
  return `${process.env.WORKERS_TEST_DATABASE_PREFIX ?? 'nestjs_workers'}_${purpose}_${process.env.JEST_WORKER_ID ?? '0'}`;
}

/**
 * Module database options for one test app on `database`. Server databases get one database per
 * Jest worker (test files in one worker run one after another), emptied by `resetWorkerTables`.
 */
export async function moduleDatabaseOptions(
  database: TestDatabase,
  sqliteFile: string,
): Promise<WorkerModuleOptions['database']> {
  if (database.type === 'better-sqlite3') return { database: sqliteFile };
  const url = await ensureServerDatabase(database, workerDatabaseName('test'));
  return { type: database.type, url, synchronize: true, poolSize: 5 };
}

/** The queue tables the tests empty between tests (resetWorkerTables, the shared queue of worker processes). */
export const WORKER_TABLE_NAMES = [
  'nestjs_workers',
  'nestjs_failed_workers',
  'nestjs_workers_schedules',
  'nestjs_workers_history',
  'nestjs_workers_processes',
  'nestjs_workers_throughput',
  'nestjs_workers_queues',
  'nestjs_workers_slots',
  'nestjs_workers_rate_limits',
  'nestjs_workers_rate_starts',
  'nestjs_workers_throttles',
] as const;

/** Empties the queue tables (and the recurring slots) and restarts their ids, so every test starts from row 1. */
export async function resetWorkerTables(dataSource: DataSource): Promise<void> {
  const type = dataSource.options.type;
  for (const table of WORKER_TABLE_NAMES) {
    if (type === 'postgres') await dataSource.query(`TRUNCATE TABLE "${table}" RESTART IDENTITY`);
    else if (type === 'mysql' || type === 'mariadb') await dataSource.query(`TRUNCATE TABLE \`${table}\``);
  }
}

const NUMERIC_COLUMNS = [
  'id',
  'attempts',
  'retries',
  'priority',
  'available_at',
  'lease_expires_at',
  'created_at',
  'updated_at',
  'deleted_at',
  'failed_at',
  'job_id',
  'started_at',
  'finished_at',
  'duration_ms',
];

/** A raw row with its numeric columns as numbers, whatever the driver returned (PostgreSQL: bigint strings). */
export function normalizeRow(row: Record<string, unknown>): Record<string, unknown> {
  const normalized = { ...row };
  for (const column of NUMERIC_COLUMNS) {
    const value = normalized[column];
    if (typeof value === 'string' || typeof value === 'bigint') normalized[column] = Number(value);
  }
  return normalized;
}

/**
 * How many connections are open to one test database: the server's own count (pg_stat_activity,
 * the MariaDB processlist) for `databaseName`, or for SQLite whether the WAL file of `databaseName`
 * (the file path) exists, which SQLite deletes when the last connection to the file closes.
 */
export async function openConnections(database: TestDatabase, databaseName: string): Promise<number> {
  if (database.type === 'better-sqlite3') return existsSync(`${databaseName}-wal`) ? 1 : 0;
  const admin = await new DataSource({ type: database.type, url: database.serverUrl! }).initialize();
  try {
    const sql =
      database.type === 'postgres'
        ? 'SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1'
        : 'SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE DB = ?';
    const [{ n }] = (await admin.query(sql, [databaseName])) as { n: string | number }[];
    return Number(n);
  } finally {
    await admin.destroy();
  }
}
