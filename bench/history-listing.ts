/**
 * `npm run bench:history`: WorkerJobsService over a million-row history on PostgreSQL, MariaDB and
 * SQLite. Fills 1,000,000 history rows (4 queues of 250,000, 5 event names, every seventh cancelled)
 * with one INSERT … SELECT per 100,000 rows, then prints the median time of each listing: a queue's
 * first page, its page 1000, with an event name, with a payload filter, with state 'completed', each
 * with its total count, and getJob by id. Servers as for npm run bench (WORKERS_TEST_POSTGRES_URL /
 * WORKERS_TEST_MYSQL_URL); BENCH_HISTORY_ROWS changes the row count (a quick look, not for figures).
 */
import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DynamicModule, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import mysql from 'mysql2/promise';
import pg from 'pg';
import type { DataSource } from 'typeorm';
import {
  type FindJobsQuery,
  WORKER_DATA_SOURCE,
  WorkerJobsService,
  WorkerModule,
  type WorkerModuleOptions,
} from '../lib/index.js';

const ROWS = Number(process.env.BENCH_HISTORY_ROWS ?? 1_000_000);
const CHUNK = 100_000;
const RUNS = 7;
const PREFIX = process.env.WORKERS_TEST_DATABASE_PREFIX ?? 'nestjs_workers';
const DATABASE = `${PREFIX}_bench_history`;

type Kind = 'postgres' | 'mariadb' | 'sqlite';

/**
 * Not in the entities: with them, a queue's listing by event name or by state walks (and counts)
 * only its matching index entries instead of fetching every row of the queue.
 */
function log(message: string): void {
  process.stderr.write(`bench:history: ${message}\n`);
}

@Module({})
class HistoryBenchModule {
  static register(database: WorkerModuleOptions['database']): DynamicModule {
    return {
      module: HistoryBenchModule,
      imports: [
        WorkerModule.forRoot({
          database: { ...database, synchronize: true } as WorkerModuleOptions['database'],
          autoStart: false,
          logger: { log: () => undefined, warn: () => undefined, error: (message: string) => log(message) },
        }),
      ],
    };
  }
}

/**
 * One INSERT … SELECT of history rows `first`..`first + count - 1`: ids from a 1000 × (count / 1000)
 * cross join of a recursive CTE (MariaDB, SQLite) or generate_series (PostgreSQL).
 */
function fillStatement(kind: Kind, first: number, count: number, t0: number): string {
  const concat = (...parts: string[]): string =>
    // Parenthesized: SQLite's || binds tighter than %.
    kind === 'mariadb' ? `CONCAT(${parts.join(', ')})` : parts.map((part) => `(${part})`).join(' || ');
  const columns =
    'id, queue_name, event_name, payload, attempts, retries, priority, state, result, created_at, updated_at, ' +
    'available_at, started_at, finished_at, duration_ms, worker_id';
  const intDiv = kind === 'mariadb' ? 'DIV' : '/';
  const values =
    `i, ${concat("'q'", 'i % 4')}, ${concat("'Event'", `(i ${intDiv} 4) % 5`)}, ` +
    `${concat(`'{"user":"u'`, 'i % 1000', `'","n":'`, 'i', "'}'")}, 1, 3, 0, ` +
    "CASE WHEN i % 7 = 0 THEN 'cancelled' ELSE 'completed' END, '{\"ok\":true}', " +
    `${t0} + i, ${t0} + i, ${t0} + i, ${t0} + i + 1, ${t0} + i + 3, 2, 'bench-worker'`;
  const table = 'nestjs_workers_history';
  if (kind === 'postgres') {
    return (
      `INSERT INTO ${table} (${columns}) SELECT ${values} ` +
      `FROM generate_series(${first}::bigint, ${first + count - 1}) AS i`
    );
  }
  return (
    `INSERT INTO ${table} (${columns}) WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 999) ` +
    `SELECT ${values} FROM (SELECT ${first} + a.n * ${count / 1000} + b.n AS i FROM d a, d b ` +
    `WHERE b.n < ${count / 1000}) AS ids`
  );
}

async function fill(kind: Kind, dataSource: DataSource): Promise<void> {
  const t0 = Date.now() - 30 * 24 * 3600 * 1000;
  const started = performance.now();
  for (let first = 1; first <= ROWS; first += CHUNK) {
    await dataSource.query(fillStatement(kind, first, Math.min(CHUNK, ROWS - first + 1), t0));
  }
  // As a long-lived table is: statistics gathered (and on PostgreSQL the visibility map set).
  if (kind === 'postgres') await dataSource.query('VACUUM ANALYZE nestjs_workers_history');
  else if (kind === 'mariadb') await dataSource.query('ANALYZE TABLE nestjs_workers_history');
  else await dataSource.query('ANALYZE');
  log(`${kind}: ${ROWS.toLocaleString('en-US')} history rows in ${Math.round(performance.now() - started)} ms`);
}

async function median(run: () => Promise<unknown>): Promise<number> {
  await run(); // warm: plans cached, pages in memory
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    await run();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(RUNS / 2)]!;
}

const LISTINGS: [string, FindJobsQuery][] = [
  ['findJobs: first page of a queue', { queueName: 'q1' }],
  ['findJobs: page 1000 of a queue', { queueName: 'q1', page: 1000 }],
  ['findJobs: queue + eventName', { queueName: 'q1', eventName: 'Event3' }],
  ['findJobs: queue + payload { user }', { queueName: 'q1', payload: { user: 'u17' } }],
  ["findJobs: queue + state 'completed'", { queueName: 'q1', state: 'completed' }],
];

async function measure(kind: Kind, database: WorkerModuleOptions['database']): Promise<Record<string, number>> {
  const app = await NestFactory.createApplicationContext(HistoryBenchModule.register(database), { logger: false });
  try {
    await fill(kind, app.get<DataSource>(WORKER_DATA_SOURCE));
    const jobs = app.get(WorkerJobsService);
    const figures: Record<string, number> = {};
    for (const [name, query] of LISTINGS) {
      const page = await jobs.findJobs(query);
      log(`${kind}: ${name}: total ${page.total}, ${page.items.length} items`);
      figures[name] = await median(() => jobs.findJobs(query));
    }
    const id = String(Math.floor(ROWS / 2) + 1);
    if (!(await jobs.getJob(id))) throw new Error(`bench:history: job ${id} not found`);
    figures['getJob by id'] = await median(() => jobs.getJob(id));
    return figures;
  } finally {
    await app.close();
  }
}

async function freshServerDatabase(kind: 'postgres' | 'mariadb', url: string): Promise<string> {
  if (kind === 'postgres') {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.end();
  } else {
    const admin = await mysql.createConnection(url);
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
    await admin.query(`CREATE DATABASE ${DATABASE}`);
    await admin.end();
  }
  const target = new URL(url);
  target.pathname = `/${DATABASE}`;
  return target.toString();
}

/** Drops the bench database again: a million rows are not left on the shared server. */
async function dropServerDatabase(kind: 'postgres' | 'mariadb', url: string): Promise<void> {
  if (kind === 'postgres') {
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE} WITH (FORCE)`);
    await admin.end();
  } else {
    const admin = await mysql.createConnection(url);
    await admin.query(`DROP DATABASE IF EXISTS ${DATABASE}`);
    await admin.end();
  }
}

async function main(): Promise<void> {
  const columns: Record<string, Record<string, number>> = {};
  const postgresUrl = process.env.WORKERS_TEST_POSTGRES_URL;
  const mysqlUrl = process.env.WORKERS_TEST_MYSQL_URL;
  if (postgresUrl) {
    const url = await freshServerDatabase('postgres', postgresUrl);
    try {
      columns.PostgreSQL = await measure('postgres', { type: 'postgres', url });
    } finally {
      await dropServerDatabase('postgres', postgresUrl);
    }
  } else log('PostgreSQL: skipped (no WORKERS_TEST_POSTGRES_URL)');
  if (mysqlUrl) {
    const url = await freshServerDatabase('mariadb', mysqlUrl);
    try {
      columns.MariaDB = await measure('mariadb', { type: 'mariadb', url });
    } finally {
      await dropServerDatabase('mariadb', mysqlUrl);
    }
  } else log('MariaDB: skipped (no WORKERS_TEST_MYSQL_URL)');
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-history-'));
  try {
    columns.SQLite = await measure('sqlite', { database: join(dir, 'history.sqlite') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const names = Object.keys(columns);
  const measures = Object.keys(columns[names[0]!]!);
  const width = Math.max(...measures.map((measure) => measure.length));
  const lines = [
    `Median of ${RUNS} runs (ms, each findJobs with its total count), ${ROWS.toLocaleString('en-US')} history rows:`,
    `${'measure'.padEnd(width)}  ${names.map((name) => name.padStart(10)).join('  ')}`,
    ...measures.map(
      (measure) =>
        `${measure.padEnd(width)}  ${names.map((name) => columns[name]![measure]!.toFixed(2).padStart(10)).join('  ')}`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
