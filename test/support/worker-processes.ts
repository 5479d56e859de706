/**
 * Worker processes for the multi-process tests: compiling and starting test/fixtures/worker-process.ts,
 * the shared queue on one server database or one SQLite file, skewed clocks (libfaketime), and reading the runs recorded
 * in mp_runs.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { BaseEvent, EventService, QueueEvent, TypeOrmWorkerCreator, workerEntitySchemas } from '../../lib/index.js';
import { DEFAULT_BUSY_TIMEOUT_MS } from '../../lib/worker.defaults.js';
import { ensureServerDatabase, resetWorkerTables, type TestDatabase, workerDatabaseName } from './databases.js';
import { tempDatabase } from './test-app.js';

/** The queue tables a shared queue empties before each test (those resetWorkerTables empties). */
const WORKER_TABLE_NAMES = [
  'nestjs_workers',
  'nestjs_failed_workers',
  'nestjs_workers_schedules',
  'nestjs_workers_history',
  'nestjs_workers_processes',
  'nestjs_workers_throughput',
];

const ROOT = join(import.meta.dirname, '..', '..');
// One output folder per Jest worker: two suites compiling into one folder at once could hand a
// child process a half-written file.
const OUT_DIR = join(ROOT, 'dist', `fixtures-${process.env.JEST_WORKER_ID ?? '0'}`);
const FIXTURE = compiledFixture('worker-process.js');

/** A file of test/fixtures as buildWorkerProcess() compiled it (`name.ts` → `name.js`). */
export function compiledFixture(file: string): string {
  return join(OUT_DIR, 'test', 'fixtures', file);
}

/** Compiles the worker process (test/fixtures/worker-process.ts) with the library it imports. */
export function buildWorkerProcess(): void {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  execFileSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.fixtures.json'), '--outDir', OUT_DIR], {
    stdio: 'inherit',
  });
}

/** The event the worker processes run, as the dispatching side knows it (same name and queue). */
@QueueEvent('mp', { name: 'RecordedRunEvent', retries: 10 })
export class RecordedRunEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    throw new Error('runs in the worker processes only');
  }
}

export interface RunRecord {
  eventN: number;
  worker: string;
  startedAt: number;
  endedAt: number | null;
  /** When the event saw its AbortSignal fire, and the reason's name (LeaseLostError, …). */
  abortedAt: number | null;
  abortReason: string | null;
}

/** A database of its own for the multi-process tests: queue tables plus the mp_runs record table. */
export class SharedQueue {
  private constructor(
    readonly database: TestDatabase,
    readonly url: string,
    readonly dataSource: DataSource,
    private readonly cleanup: () => void = () => undefined,
  ) {}

  /**
   * Opens the shared queue: on a server database, `url` or one of its own per Jest worker; on SQLite, a
   * fresh file in a temp folder (removed by close()) that the processes open by its path, as the module
   * does it (WAL, so readers never wait for the writer, and a busy timeout for writers).
   */
  static async open(database: TestDatabase, url?: string): Promise<SharedQueue> {
    if (database.type === 'better-sqlite3') {
      const file = tempDatabase();
      const dataSource = await new DataSource({
        type: 'better-sqlite3',
        database: file.file,
        entities: workerEntitySchemas('better-sqlite3'),
        synchronize: true,
        enableWAL: true,
        timeout: DEFAULT_BUSY_TIMEOUT_MS,
      }).initialize();
      await SharedQueue.createRunsTable(dataSource);
      return new SharedQueue(database, file.file, dataSource, file.cleanup);
    }
    const queueUrl = url ?? (await ensureServerDatabase(database, workerDatabaseName('mp')));
    const type = database.type;
    const dataSource = await new DataSource({
      type,
      url: queueUrl,
      entities: workerEntitySchemas(type),
      synchronize: true,
      poolSize: 20,
    }).initialize();
    await SharedQueue.createRunsTable(dataSource);
    return new SharedQueue(database, queueUrl, dataSource);
  }

  private static async createRunsTable(dataSource: DataSource): Promise<void> {
    await dataSource.query('DROP TABLE IF EXISTS mp_runs');
    await dataSource.query(
      'CREATE TABLE mp_runs (run_id varchar(64) PRIMARY KEY, event_n int NOT NULL, worker varchar(64) NOT NULL, ' +
        'started_at bigint NOT NULL, ended_at bigint NULL, aborted_at bigint NULL, abort_reason varchar(64) NULL)',
    );
  }

  async reset(): Promise<void> {
    if (this.database.type === 'better-sqlite3') {
      // resetWorkerTables leaves SQLite alone (every test app has a fresh file); this file is shared by the suite.
      for (const table of WORKER_TABLE_NAMES) await this.dataSource.query(`DELETE FROM ${table}`);
      const [sequence] = (await this.dataSource.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'",
      )) as unknown[];
      if (sequence) await this.dataSource.query('DELETE FROM sqlite_sequence');
    } else await resetWorkerTables(this.dataSource);
    await this.dataSource.query('DELETE FROM mp_runs');
  }

  /** Dispatches events n = first … first + count - 1. */
  async dispatch(count: number, first = 0): Promise<void> {
    const events = new EventService({
      workerCreator: new TypeOrmWorkerCreator(this.dataSource),
      events: [RecordedRunEvent],
    });
    for (let start = 0; start < count; start += 100) {
      const batch = Array.from({ length: Math.min(100, count - start) }, (_, index) => first + start + index);
      await Promise.all(batch.map((n) => events.dispatch(new RecordedRunEvent({ n }))));
    }
  }

  async runs(): Promise<RunRecord[]> {
    const rows = (await this.dataSource.query(
      'SELECT event_n, worker, started_at, ended_at, aborted_at, abort_reason FROM mp_runs',
    )) as Record<string, unknown>[];
    const instant = (value: unknown): number | null => (value === null ? null : Number(value));
    return rows.map((row) => ({
      eventN: Number(row.event_n),
      worker: String(row.worker),
      startedAt: Number(row.started_at),
      endedAt: instant(row.ended_at),
      abortedAt: instant(row.aborted_at),
      abortReason: row.abort_reason === null ? null : String(row.abort_reason),
    }));
  }

  async count(table: 'nestjs_workers' | 'nestjs_failed_workers'): Promise<number> {
    const [row] = (await this.dataSource.query(`SELECT COUNT(*) AS count FROM ${table}`)) as {
      count: string | number;
    }[];
    return Number(row!.count);
  }

  async close(): Promise<void> {
    await this.dataSource.destroy();
    this.cleanup();
  }
}

/** One worker process: its output is kept for failure messages. */
export class WorkerProcess {
  output = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  private constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as NodeJS.Signals | null,
    }));
  }

  static async start(label: string, queue: SharedQueue, settings: Record<string, string> = {}): Promise<WorkerProcess> {
    const child = spawn(process.execPath, [FIXTURE], {
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        MP_WORKER: label,
        MP_DB_TYPE: queue.database.type,
        MP_DB_URL: queue.url,
        ...settings,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const worker = new WorkerProcess(label, child);
    await worker.waitForOutput('ready', 30_000);
    return worker;
  }

  async waitForOutput(text: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.output.includes(text)) {
      if (this.child.exitCode !== null)
        throw new Error(`Worker ${this.label} exited before printing "${text}":\n${this.output}`);
      if (Date.now() > deadline)
        throw new Error(`Worker ${this.label} did not print "${text}" within ${timeoutMs} ms:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Date.now() of the process when it became ready, as it printed it (shifted under libfaketime). */
  get reportedClock(): number {
    return Number(/clock=(\d+)/.exec(this.output)?.[1]);
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGTERM (drain and exit), then SIGKILL if it is still there after `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.kill('SIGTERM');
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Where Debian's `faketime` package puts libfaketime (LD_PRELOAD). */
const LIBFAKETIME = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1',
  '/usr/lib/faketime/libfaketime.so.1',
];

/**
 * Environment that makes a worker process's clock run `offsetSeconds` off (libfaketime). Only the
 * wall clock is shifted: timers (monotonic) keep their pace, as on a machine whose clock is wrong.
 */
export function skewedClock(offsetSeconds: number): Record<string, string> {
  const library = LIBFAKETIME.find((path) => existsSync(path));
  if (!library) throw new Error(`libfaketime not found (${LIBFAKETIME.join(', ')}): apt-get install faketime`);
  return {
    LD_PRELOAD: library,
    FAKETIME: `${offsetSeconds >= 0 ? '+' : ''}${offsetSeconds}s`,
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  };
}

/** Checks that the runs of each event never overlap in time (an unfinished run lasts until `openUntil`). */
export function overlappingEvents(runs: RunRecord[], openUntil: (run: RunRecord) => number): number[] {
  const byEvent = new Map<number, RunRecord[]>();
  for (const run of runs) byEvent.set(run.eventN, [...(byEvent.get(run.eventN) ?? []), run]);
  const overlapping: number[] = [];
  for (const [eventN, eventRuns] of byEvent) {
    const sorted = [...eventRuns].sort((a, b) => a.startedAt - b.startedAt);
    for (let index = 1; index < sorted.length; index++) {
      const previous = sorted[index - 1]!;
      if (sorted[index]!.startedAt < (previous.endedAt ?? previous.abortedAt ?? openUntil(previous)))
        overlapping.push(eventN);
    }
  }
  return overlapping;
}

export function countBy<T>(items: T[], key: (item: T) => number): Map<number, number> {
  const counts = new Map<number, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return counts;
}

/**
 * The hooks of a suite of worker processes on one server: the shared queue, opened once and emptied
 * before each test, and the processes a test started, stopped after it (a SIGSTOPped one is continued
 * first, so that it can exit). `start()` starts a process and registers it.
 */
export function workerProcessSuite(database: TestDatabase): {
  readonly queue: SharedQueue;
  readonly workers: WorkerProcess[];
  start(label: string, settings: Record<string, string>): Promise<WorkerProcess>;
} {
  let queue: SharedQueue | undefined;
  const workers: WorkerProcess[] = [];
  beforeAll(async () => {
    buildWorkerProcess();
    queue = await SharedQueue.open(database);
  });
  beforeEach(async () => {
    await queue!.reset();
  });
  afterEach(async () => {
    for (const worker of workers)
      if (worker.child.signalCode === null && worker.child.exitCode === null) worker.kill('SIGCONT');
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));
  });
  afterAll(async () => {
    await queue?.close();
  });
  return {
    get queue() {
      if (!queue) throw new Error('The shared queue opens in beforeAll');
      return queue;
    },
    workers,
    async start(label, settings) {
      const worker = await WorkerProcess.start(label, this.queue, settings);
      workers.push(worker);
      return worker;
    },
  };
}
