/**
 * `npm run bench` (see bench/run.sh): nestjs-workers, graphile-worker (local queue) and pg-boss (batch
 * handler) on the same PostgreSQL in one run, our queue on SQLite and MariaDB, and a worker process's
 * RSS over 500,000 events. Prints one table with our ratio to the best peer on each row.
 */
import 'reflect-metadata';
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import mysql from 'mysql2/promise';
import {
  Logger as GraphileLogger,
  makeWorkerUtils,
  run as runGraphile,
  runMigrations as migrateGraphile,
} from 'graphile-worker';
import PgBoss from 'pg-boss';
import { type BenchApp, measureProcessing, NoopEvent, openBenchApp, starts } from './bench-app.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const N_BULK = Math.round(50_000 * SCALE);
const N_PROCESS = Math.round(50_000 * SCALE);
const N_LATENCY = Math.max(20, Math.round(200 * SCALE));
const N_RSS = Math.round(500_000 * SCALE);
/** The per-key-limited queue's row (keyed-bench.ts): 20 events for each of its 1,000 keys. */
const N_KEYED = Math.round(20_000 * SCALE);

interface Row {
  measure: string;
  ours: number;
  graphile?: number;
  pgBoss?: number;
  unit: string;
  /** Lower is better (latency). */
  lower?: boolean;
}

const rows: Row[] = [];
const notes: string[] = [];

/**
 * BENCH_ONLY=keyed runs only the per-key-limited queue's row and the plain processing beside it, on
 * the same app (measureKeyed), on each database of BENCH_DATABASES.
 * BENCH_ONLY=history runs only the history cost (measureHistoryCost) on each database, for iterating
 * on the history path; BENCH_DATABASES (a comma list of postgres, sqlite, mariadb) narrows it, and
 * BENCH_DROP_HISTORY_INDEX (an index name of the history table, or 'all') drops that secondary index
 * in the bench's own database first, to measure what it costs (the schema itself is not changed).
 */
const BENCH_ONLY = process.env.BENCH_ONLY;
const BENCH_DATABASES = (process.env.BENCH_DATABASES ?? 'postgres,sqlite,mariadb').split(',');
const DROP_HISTORY_INDEX = process.env.BENCH_DROP_HISTORY_INDEX;
const HISTORY_INDEXES = [
  'IDX_nestjs_workers_history_queue',
  'IDX_nestjs_workers_history_event',
  'IDX_nestjs_workers_history_state',
  'IDX_nestjs_workers_history_finished',
  'IDX_nestjs_workers_history_key',
];

function log(message: string): void {
  process.stderr.write(`bench: ${message}\n`);
}

function perSecond(count: number, ms: number): number {
  return Math.round((count / ms) * 1000);
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`bench: ${what} did not finish within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** A fresh database of this name on the server of `url`; returns its URL. */
async function freshPostgres(url: string, name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

async function freshMysql(url: string, name: string): Promise<string> {
  const admin = await mysql.createConnection(url);
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const target = new URL(url);
  target.pathname = `/${name}`;
  return target.toString();
}

/**
 * What autovacuum would do after 50,000 deletes (it is off on some servers, this machine's among
 * them): every system's database is vacuumed after its processing run, before its latency run. A
 * checkpoint then writes out what the processing run left, so that no system's latency run pays for
 * an earlier run's checkpoint (needs a superuser or pg_checkpoint; skipped without it).
 */
async function vacuum(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('VACUUM ANALYZE');
    await client
      .query('CHECKPOINT')
      .catch((error: unknown) => log(`no CHECKPOINT before the latency run: ${String(error)}`));
  } finally {
    await client.end();
  }
}

// ---------------------------------------------------------------- nestjs-workers

interface OurFigures {
  enqueue: number;
  process: number;
  latency?: { p50: number; p99: number };
}

async function measureOurs(open: () => Promise<BenchApp>, withLatency: boolean): Promise<OurFigures> {
  const app = await open();
  let enqueue: number;
  let processing: number;
  try {
    const events = Array.from({ length: N_BULK }, (_, n) => new NoopEvent({ n }));
    const started = performance.now();
    await app.events.dispatchMany(events);
    enqueue = perSecond(N_BULK, performance.now() - started);
    if (N_PROCESS !== N_BULK) await app.clear();
    processing = await processOurs(app, N_PROCESS !== N_BULK);
  } finally {
    await app.close();
  }
  if (!withLatency) return { enqueue, process: processing };
  await vacuum(ourPostgresUrl);
  return { enqueue, process: processing, latency: await measureOurLatency() };
}

/** Processing N_PROCESS no-op events (see measureProcessing). */
function processOurs(app: BenchApp, dispatch: boolean, keepCompleted = false): Promise<number> {
  return measureProcessing(app, { count: N_PROCESS, dispatch, keepCompleted, event: (n) => new NoopEvent({ n }) });
}

/** BENCH_HISTORY_ROUNDS: more rounds steady the medians on a busy machine. */
const HISTORY_ROUNDS = Number(process.env.BENCH_HISTORY_ROUNDS ?? 3);

function median(values: number[]): number {
  return percentile(values, 50);
}

/**
 * What keeping completed events costs: processing with history off and on, interleaved over
 * HISTORY_ROUNDS rounds on one warmed-up app (medians), so both see the same machine.
 */
async function measureHistoryCost(open: () => Promise<BenchApp>): Promise<{ off: number; on: number }> {
  const app = await open();
  try {
    if (DROP_HISTORY_INDEX) {
      const dropped = DROP_HISTORY_INDEX === 'all' ? HISTORY_INDEXES : DROP_HISTORY_INDEX.split(',');
      for (const index of dropped) await app.dropHistoryIndex(index);
      notes.push(`history indexes dropped for this run: ${dropped.join(', ')}`);
    }
    await processOurs(app, true); // warm-up
    const off: number[] = [];
    const on: number[] = [];
    for (let round = 0; round < HISTORY_ROUNDS; round++) {
      off.push(await processOurs(app, true));
      on.push(await processOurs(app, true, true));
      await app.clear();
    }
    return { off: median(off), on: median(on) };
  } finally {
    await app.close();
  }
}

/** Rows for the history cost on one database: history off, history on (ratio on ÷ off in the measure). */
function historyRows(database: string, cost: { off: number; on: number }): Row[] {
  const share = ((cost.on / cost.off) * 100).toFixed(0);
  return [
    { measure: `${database}: processing, history off (median of ${HISTORY_ROUNDS})`, ours: cost.off, unit: 'events/s' },
    {
      measure: `${database}: processing with keepCompleted (${share} % of off)`,
      ours: cost.on,
      unit: 'events/s',
    },
  ];
}

let ourPostgresUrl = '';

type BenchDatabase = Parameters<typeof openBenchApp>[0];

/**
 * The per-key-limited queue on one database, with plain processing on the same app (keyed-bench.ts,
 * imported here: its event class is known to every app opened after, so it runs after the plain rows).
 */
async function measureKeyed(database: BenchDatabase): Promise<{ plain: number; keyed: number }> {
  const { measureKeyedProcessing, openKeyedBenchApp } = await import('./keyed-bench.js');
  return measureKeyedProcessing(() => openKeyedBenchApp(database), N_KEYED);
}

function keyedRow(database: string, figures: { plain: number; keyed: number }): Row {
  const share = ((figures.keyed / figures.plain) * 100).toFixed(0);
  return {
    measure: `${database}: processing, per-key-limited queue (1,000 keys, keyConcurrency 1; ${share} % of plain)`,
    ours: figures.keyed,
    unit: 'events/s',
  };
}

/** Puts the row right after the row whose measure is `after` (the plain processing of its database). */
function insertAfter(after: string, row: Row): void {
  const index = rows.findIndex((candidate) => candidate.measure === after);
  rows.splice(index < 0 ? rows.length : index + 1, 0, row);
}

/** The databases of BENCH_DATABASES that are there, each with a fresh database (SQLite: a temp file). */
async function keyedDatabases(
  postgresUrl: string | undefined,
  mysqlUrl: string | undefined,
  dir: string,
): Promise<[string, BenchDatabase][]> {
  const prefix = process.env.WORKERS_TEST_DATABASE_PREFIX ?? 'nestjs_workers_bench';
  const databases: [string, BenchDatabase][] = [];
  if (postgresUrl && BENCH_DATABASES.includes('postgres'))
    databases.push(['PostgreSQL', { type: 'postgres', url: await freshPostgres(postgresUrl, `${prefix}_keyed`) }]);
  if (BENCH_DATABASES.includes('sqlite')) databases.push(['SQLite', { database: join(dir, 'keyed.sqlite') }]);
  if (mysqlUrl && BENCH_DATABASES.includes('mariadb'))
    databases.push(['MariaDB', { type: 'mariadb', url: await freshMysql(mysqlUrl, `${prefix}_keyed`) }]);
  return databases;
}

/** BENCH_ONLY=keyed: plain and per-key-limited processing on one app per database. */
async function keyedOnly(postgresUrl: string | undefined, mysqlUrl: string | undefined): Promise<void> {
  notes.push(`BENCH_ONLY=keyed, N = ${N_KEYED.toLocaleString('en-US')} per pass, ${cpus().length} cores`);
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-bench-'));
  try {
    for (const [name, database] of await keyedDatabases(postgresUrl, mysqlUrl, dir)) {
      log(`per-key-limited queue on ${name}`);
      const figures = await measureKeyed(database);
      rows.push(
        { measure: `${name}: processing no-op events (same app)`, ours: figures.plain, unit: 'events/s' },
        keyedRow(name, figures),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  printTable();
}

/** Idle workers (polling once a second, woken by NOTIFY), one event dispatched at a time. */
async function measureOurLatency(): Promise<{ p50: number; p99: number }> {
  const app = await openBenchApp({ type: 'postgres', url: ourPostgresUrl }, { autoStart: true });
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    const latencies: number[] = [];
    for (let n = 0; n < N_LATENCY; n++) {
      const sent = performance.now();
      await app.events.dispatch(new NoopEvent({ n: -1 - n }));
      await until(() => starts.has(-1 - n), 5000, 'an idle dispatch');
      latencies.push(starts.get(-1 - n)! - sent);
    }
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  } finally {
    await app.close();
  }
}

// ---------------------------------------------------------------- graphile-worker

async function measureGraphile(connectionString: string): Promise<OurFigures> {
  await migrateGraphile({ connectionString });
  const utils = await makeWorkerUtils({ connectionString });
  let enqueue: number;
  let processing: number;
  try {
    const specs = Array.from({ length: N_BULK }, (_, n) => ({ identifier: 'bench', payload: { n } }));
    const started = performance.now();
    await utils.addJobs(specs);
    enqueue = perSecond(N_BULK, performance.now() - started);
  } finally {
    await utils.release();
  }
  let done = 0;
  const startedProcessing = performance.now();
  // The documented configuration for throughput: a local queue (batch fetch) and batched completion.
  const runner = await runGraphile({
    connectionString,
    concurrency: 10,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: quietGraphileLogger(),
    taskList: { bench: async () => void done++ },
    preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0 } },
  });
  try {
    await until(() => done >= N_BULK, 600_000, 'graphile-worker processing');
    processing = perSecond(N_BULK, performance.now() - startedProcessing);
  } finally {
    await runner.stop();
  }
  await vacuum(connectionString);
  // Idle latency: its own runner, default settings (LISTEN/NOTIFY).
  const latencyStarts = new Map<number, number>();
  const idle = await runGraphile({
    connectionString,
    concurrency: 10,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: quietGraphileLogger(),
    taskList: { latency: async (payload) => void latencyStarts.set((payload as { n: number }).n, performance.now()) },
  });
  const addUtils = await makeWorkerUtils({ connectionString });
  const latencies: number[] = [];
  try {
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (let n = 0; n < N_LATENCY; n++) {
      const sent = performance.now();
      await addUtils.addJob('latency', { n });
      await until(() => latencyStarts.has(n), 5000, 'a graphile-worker idle job');
      latencies.push(latencyStarts.get(n)! - sent);
    }
  } finally {
    await addUtils.release();
    await idle.stop();
  }
  return { enqueue, process: processing, latency: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) } };
}

function quietGraphileLogger(): GraphileLogger {
  return new GraphileLogger(() => () => undefined);
}

// ---------------------------------------------------------------- pg-boss

async function measurePgBoss(connectionString: string): Promise<OurFigures> {
  const boss = new PgBoss({ connectionString, schema: 'pgboss_bench', supervise: false, schedule: false });
  boss.on('error', (error) => log(`pg-boss: ${String(error)}`));
  await boss.start();
  let enqueue: number;
  let processing: number;
  try {
    await boss.createQueue('bench');
    await boss.createQueue('latency');
    const jobs = Array.from({ length: N_BULK }, (_, n) => ({ name: 'bench', data: { n } }));
    let started = performance.now();
    await boss.insert(jobs);
    enqueue = perSecond(N_BULK, performance.now() - started);
    let done = 0;
    started = performance.now();
    // The batch handler, as its documentation recommends for throughput; several workers fetch in parallel.
    for (let worker = 0; worker < 4; worker++) {
      await boss.work(
        'bench',
        { batchSize: 500, pollingIntervalSeconds: 0.5 },
        async (batch) => void (done += batch.length),
      );
    }
    await until(() => done >= N_BULK, 600_000, 'pg-boss processing');
    processing = perSecond(N_BULK, performance.now() - started);
    await boss.offWork('bench');
    await vacuum(connectionString);
    const latencyStarts = new Map<number, number>();
    await boss.work(
      'latency',
      { batchSize: 1, pollingIntervalSeconds: 0.5 },
      async ([job]) => void latencyStarts.set((job!.data as { n: number }).n, performance.now()),
    );
    const latencies: number[] = [];
    for (let n = 0; n < N_LATENCY; n++) {
      const sent = performance.now();
      await boss.send('latency', { n });
      await until(() => latencyStarts.has(n), 5000, 'a pg-boss idle job');
      latencies.push(latencyStarts.get(n)! - sent);
    }
    return {
      enqueue,
      process: processing,
      latency: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    };
  } finally {
    await boss.stop({ graceful: false, wait: true });
  }
}

// ---------------------------------------------------------------- memory

/** A worker process (bench/rss-worker.ts) that queues and runs N_RSS events on SQLite in rounds. */
function measureRss(): Promise<{ warm: number; end: number; rounds: number }> {
  return new Promise((resolve, reject) => {
    const child = fork(join(fileURLToPath(new URL('.', import.meta.url)), 'rss-worker.js'), [String(N_RSS)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (message) => resolve(message as { warm: number; end: number; rounds: number }));
    child.on('error', reject);
    child.on('exit', (code) => code !== 0 && reject(new Error(`bench: the RSS worker exited with ${code}`)));
  });
}

// ---------------------------------------------------------------- table

function ratio(row: Row): string {
  const peers = [row.graphile, row.pgBoss].filter((value): value is number => value !== undefined);
  if (peers.length === 0) return '—';
  const best = row.lower ? Math.min(...peers) : Math.max(...peers);
  const value = row.lower ? best / row.ours : row.ours / best;
  return `${value.toFixed(2)}×`;
}

function format(value: number | undefined, unit: string): string {
  if (value === undefined) return '—';
  return unit === 'ms' ? value.toFixed(2) : value.toLocaleString('en-US');
}

function printTable(): void {
  const lines = [
    '| measure | nestjs-workers | graphile-worker | pg-boss | unit | ours ÷ best peer |',
    '| --- | ---: | ---: | ---: | --- | ---: |',
    ...rows.map(
      (row) =>
        `| ${row.measure} | ${format(row.ours, row.unit)} | ${format(row.graphile, row.unit)} | ${format(row.pgBoss, row.unit)} | ${row.unit} | ${ratio(row)} |`,
    ),
  ];
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
  for (const note of notes) process.stdout.write(`${note}\n`);
}

/** BENCH_ONLY=history: the history cost alone, on the databases of BENCH_DATABASES, in databases of its own. */
async function historyOnly(postgresUrl: string | undefined, mysqlUrl: string | undefined): Promise<void> {
  const prefix = process.env.WORKERS_TEST_DATABASE_PREFIX ?? 'nestjs_workers_bench';
  notes.push(`BENCH_ONLY=history, N = ${N_PROCESS.toLocaleString('en-US')} (processing), ${cpus().length} cores`);
  if (postgresUrl && BENCH_DATABASES.includes('postgres')) {
    log('history cost on PostgreSQL');
    const url = await freshPostgres(postgresUrl, `${prefix}_history_bench`);
    rows.push(...historyRows('PostgreSQL', await measureHistoryCost(() => openBenchApp({ type: 'postgres', url }))));
  }
  if (BENCH_DATABASES.includes('sqlite')) {
    log('history cost on SQLite');
    const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-bench-'));
    try {
      const database = join(dir, 'bench.sqlite');
      rows.push(...historyRows('SQLite', await measureHistoryCost(() => openBenchApp({ database }))));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (mysqlUrl && BENCH_DATABASES.includes('mariadb')) {
    log('history cost on MariaDB');
    const url = await freshMysql(mysqlUrl, `${prefix}_history_bench`);
    rows.push(...historyRows('MariaDB', await measureHistoryCost(() => openBenchApp({ type: 'mariadb', url }))));
  }
  printTable();
}

async function main(): Promise<void> {
  const postgresUrl = process.env.WORKERS_TEST_POSTGRES_URL;
  const mysqlUrl = process.env.WORKERS_TEST_MYSQL_URL;
  if (BENCH_ONLY === 'history') return historyOnly(postgresUrl, mysqlUrl);
  if (BENCH_ONLY === 'keyed') return keyedOnly(postgresUrl, mysqlUrl);
  if (BENCH_ONLY) throw new Error(`bench: BENCH_ONLY=${BENCH_ONLY} is not a part it knows (history, keyed)`);
  if (!postgresUrl) throw new Error('bench: no PostgreSQL (WORKERS_TEST_POSTGRES_URL); run it through npm run bench');
  notes.push(
    `Machine: ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; ` +
      `servers on the same host. N = ${N_BULK.toLocaleString('en-US')} (enqueue), ${N_PROCESS.toLocaleString('en-US')} (processing), ` +
      `${N_LATENCY} (latency), ${N_RSS.toLocaleString('en-US')} (RSS). Ratios: higher is better for ours (latency: peer ÷ ours).`,
  );

  log('nestjs-workers on PostgreSQL');
  ourPostgresUrl = await freshPostgres(postgresUrl, 'nestjs_workers_bench_ours');
  const ours = await measureOurs(() => openBenchApp({ type: 'postgres', url: ourPostgresUrl }), true);
  log('graphile-worker on PostgreSQL');
  const graphile = await measureGraphile(await freshPostgres(postgresUrl, 'nestjs_workers_bench_graphile'));
  log('pg-boss on PostgreSQL');
  const pgBoss = await measurePgBoss(await freshPostgres(postgresUrl, 'nestjs_workers_bench_pgboss'));
  rows.push(
    {
      measure: 'PostgreSQL: bulk enqueue',
      ours: ours.enqueue,
      graphile: graphile.enqueue,
      pgBoss: pgBoss.enqueue,
      unit: 'events/s',
    },
    {
      measure: 'PostgreSQL: processing no-op events',
      ours: ours.process,
      graphile: graphile.process,
      pgBoss: pgBoss.process,
      unit: 'events/s',
    },
    {
      measure: 'PostgreSQL: idle dispatch → start, p50',
      ours: ours.latency!.p50,
      graphile: graphile.latency!.p50,
      pgBoss: pgBoss.latency!.p50,
      unit: 'ms',
      lower: true,
    },
    {
      measure: 'PostgreSQL: idle dispatch → start, p99',
      ours: ours.latency!.p99,
      graphile: graphile.latency!.p99,
      pgBoss: pgBoss.latency!.p99,
      unit: 'ms',
      lower: true,
    },
  );

  log('history cost on PostgreSQL');
  rows.push(
    ...historyRows(
      'PostgreSQL',
      await measureHistoryCost(() => openBenchApp({ type: 'postgres', url: ourPostgresUrl })),
    ),
  );

  log('nestjs-workers on SQLite');
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-bench-'));
  try {
    const sqlite = await measureOurs(() => openBenchApp({ database: join(dir, 'bench.sqlite') }), false);
    rows.push(
      { measure: 'SQLite: bulk enqueue', ours: sqlite.enqueue, unit: 'events/s' },
      { measure: 'SQLite: processing no-op events', ours: sqlite.process, unit: 'events/s' },
    );
    log('history cost on SQLite');
    rows.push(
      ...historyRows('SQLite', await measureHistoryCost(() => openBenchApp({ database: join(dir, 'bench.sqlite') }))),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  if (mysqlUrl) {
    log('nestjs-workers on MariaDB');
    const url = await freshMysql(mysqlUrl, 'nestjs_workers_bench');
    const mariadb = await measureOurs(() => openBenchApp({ type: 'mariadb', url }), false);
    rows.push(
      { measure: 'MariaDB: bulk enqueue', ours: mariadb.enqueue, unit: 'events/s' },
      { measure: 'MariaDB: processing no-op events', ours: mariadb.process, unit: 'events/s' },
    );
    log('history cost on MariaDB');
    rows.push(...historyRows('MariaDB', await measureHistoryCost(() => openBenchApp({ type: 'mariadb', url }))));
  } else {
    notes.push('MariaDB: skipped (no WORKERS_TEST_MYSQL_URL).');
  }

  // After every plain row (see measureKeyed), each beside its database's plain processing row.
  const keyedDir = mkdtempSync(join(tmpdir(), 'nestjs-workers-bench-'));
  try {
    for (const [name, database] of await keyedDatabases(postgresUrl, mysqlUrl, keyedDir)) {
      log(`per-key-limited queue on ${name}`);
      insertAfter(`${name}: processing no-op events`, keyedRow(name, await measureKeyed(database)));
    }
  } finally {
    rmSync(keyedDir, { recursive: true, force: true });
  }
  notes.push(
    `Per-key-limited rows: ${N_KEYED.toLocaleString('en-US')} events over 1,000 keys, after a warm-up pass; ` +
      '"% of plain" is plain processing measured on the same app just before.',
  );

  log(`worker RSS over ${N_RSS.toLocaleString('en-US')} events (SQLite)`);
  const rss = await measureRss();
  const growth = ((rss.end - rss.warm) / rss.warm) * 100;
  rows.push(
    {
      measure: `worker RSS after the first ${(N_RSS / rss.rounds).toLocaleString('en-US')} events`,
      ours: Math.round(rss.warm / 2 ** 20),
      unit: 'MiB',
    },
    {
      measure: `worker RSS after ${N_RSS.toLocaleString('en-US')} events (growth ${growth.toFixed(1)} %)`,
      ours: Math.round(rss.end / 2 ** 20),
      unit: 'MiB',
    },
  );
  printTable();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
