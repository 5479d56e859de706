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
import {
  ensureServerDatabase,
  resetWorkerTables,
  type TestDatabase,
  WORKER_TABLE_NAMES,
  workerDatabaseName,
} from './databases.js';
import { tempDatabase } from './test-app.js';

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

/** The payload of the recorded events: their number, and the concurrency key they were dispatched with. */
export interface RecordedRunPayload {
  n: number;
  key?: string;
}

/** The event the worker processes run, as the dispatching side knows it (same name and queue). */
@QueueEvent('mp', { name: 'RecordedRunEvent', retries: 10 })
export class RecordedRunEvent extends BaseEvent<RecordedRunPayload> {
  async execute(): Promise<void> {
    throw new Error('runs in the worker processes only');
  }
}

/**
 * A second event class of queue `mp` (the worker processes give it a keyConcurrency of its own with
 * MP_B_KEY_CONCURRENCY): per-class limits on one queue.
 */
@QueueEvent('mp', { name: 'RecordedRunEventB', retries: 10 })
export class RecordedRunEventB extends BaseEvent<RecordedRunPayload> {
  async execute(): Promise<void> {
    throw new Error('runs in the worker processes only');
  }
}

/** One event to dispatch (SharedQueue.dispatchEvents): its number, concurrency key and class. */
export interface RecordedRunSpec {
  n: number;
  key?: string;
  /** RecordedRunEventB instead of RecordedRunEvent. */
  b?: boolean;
}

export interface RunRecord {
  eventN: number;
  /** The event's class name (RecordedRunEvent or RecordedRunEventB). */
  eventName: string;
  /** The concurrency key the event was dispatched with (null: none). */
  key: string | null;
  worker: string;
  /** On the database clock, when the run's INSERT reached it (after execute() began). */
  startedAt: number;
  /** On the database clock, when the run's end UPDATE reached it (before execute() returned). */
  endedAt: number | null;
  /**
   * Date.now() of the worker process when execute() began and when it was about to return: one clock
   * for every process of the machine (no libfaketime in the flow tests), without the round trip of the
   * INSERT in between, so the start that a rate limit bounds is measured where it happens.
   */
  startedLocal: number;
  endedLocal: number | null;
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
      'CREATE TABLE mp_runs (run_id varchar(64) PRIMARY KEY, event_n int NOT NULL, event_name varchar(64) NOT NULL, ' +
        'event_key varchar(255) NULL, worker varchar(64) NOT NULL, started_at bigint NOT NULL, ended_at bigint NULL, ' +
        'started_local bigint NOT NULL, ended_local bigint NULL, aborted_at bigint NULL, abort_reason varchar(64) NULL)',
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
    await this.dispatchEvents(Array.from({ length: count }, (_, index) => ({ n: first + index })));
  }

  /**
   * Dispatches these events in this order (100 at a time, so claim order follows the list up to a
   * batch): each with its concurrency key as dispatch's `concurrencyKey`, and in its payload.
   */
  async dispatchEvents(specs: RecordedRunSpec[]): Promise<void> {
    const events = new EventService({
      workerCreator: new TypeOrmWorkerCreator(this.dataSource),
      events: [RecordedRunEvent, RecordedRunEventB],
    });
    for (let start = 0; start < specs.length; start += 100) {
      await Promise.all(
        specs.slice(start, start + 100).map(({ n, key, b }) => {
          const payload: RecordedRunPayload = key === undefined ? { n } : { n, key };
          const event = b ? new RecordedRunEventB(payload) : new RecordedRunEvent(payload);
          return events.dispatch(event, key === undefined ? {} : { concurrencyKey: key });
        }),
      );
    }
  }

  /** The database's clock now (epoch ms), as mp_runs records it. */
  async now(): Promise<number> {
    const [row] = (await this.dataSource.query(`SELECT ${databaseNow(this.database.type)} AS now`)) as {
      now: string | number;
    }[];
    return Number(row!.now);
  }

  async runs(): Promise<RunRecord[]> {
    const rows = (await this.dataSource.query(
      'SELECT event_n, event_name, event_key, worker, started_at, ended_at, started_local, ended_local, aborted_at, ' +
        'abort_reason FROM mp_runs',
    )) as Record<string, unknown>[];
    const instant = (value: unknown): number | null => (value === null ? null : Number(value));
    return rows.map((row) => ({
      eventN: Number(row.event_n),
      eventName: String(row.event_name),
      key: row.event_key === null ? null : String(row.event_key),
      worker: String(row.worker),
      startedAt: Number(row.started_at),
      endedAt: instant(row.ended_at),
      startedLocal: Number(row.started_local),
      endedLocal: instant(row.ended_local),
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

/**
 * The database's clock in SQL, in epoch ms: every process records on one clock, whatever its own says
 * (libfaketime). The worker processes (test/fixtures/worker-process.ts) spell it the same way.
 */
export function databaseNow(type: string): string {
  if (type === 'postgres') return 'floor(extract(epoch from clock_timestamp()) * 1000)::bigint';
  // SQLite's clock is the machine's, shared by every process on the file.
  if (type === 'better-sqlite3') return "CAST(unixepoch('subsec') * 1000 AS INTEGER)";
  return 'FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000)';
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

/** A run as an interval of one clock: [start, end), end null while it runs. */
export interface RunInterval {
  run: RunRecord;
  start: number;
  end: number | null;
}

/** The runs on the database clock (the recorded interval lies inside the real execute() call). */
export function databaseIntervals(runs: RunRecord[]): RunInterval[] {
  return runs.map((run) => ({ run, start: run.startedAt, end: run.endedAt ?? run.abortedAt }));
}

/** The runs on the processes' clock (execute() entry to its return). */
export function localIntervals(runs: RunRecord[]): RunInterval[] {
  return runs.map((run) => ({ run, start: run.startedLocal, end: run.endedLocal ?? run.abortedAt }));
}

/** A start that found `open` runs of its group already open, with its limit (see limitViolations). */
export interface LimitViolation {
  group: string;
  limit: number;
  open: number;
  start: RunRecord;
  /** The runs of the group that were open when it started. */
  others: RunRecord[];
}

/**
 * The starts that exceeded a concurrency limit: for each run, the other runs of its group (`groupOf`;
 * undefined: not limited) open at its start, compared with its limit (`limitOf`, which may depend on
 * the run, e.g. its event class). A run is open on [start, end); one that never ended is open until
 * `openUntil(run)`. An end and a start in the same millisecond do not overlap: the end is recorded
 * before the completion frees the slot, and the start after the claim that took it.
 */
export function limitViolations(
  intervals: RunInterval[],
  groupOf: (run: RunRecord) => string | undefined,
  limitOf: (run: RunRecord) => number,
  openUntil: (run: RunRecord) => number,
): LimitViolation[] {
  const byGroup = new Map<string, RunInterval[]>();
  for (const interval of intervals) {
    const group = groupOf(interval.run);
    if (group !== undefined) byGroup.set(group, [...(byGroup.get(group) ?? []), interval]);
  }
  const violations: LimitViolation[] = [];
  for (const [group, members] of byGroup) {
    const sorted = [...members].sort((a, b) => a.start - b.start);
    for (const current of sorted) {
      const others = sorted.filter(
        (other) =>
          other !== current && other.start <= current.start && (other.end ?? openUntil(other.run)) > current.start,
      );
      const limit = limitOf(current.run);
      if (others.length >= limit)
        violations.push({ group, limit, open: others.length, start: current.run, others: others.map((o) => o.run) });
    }
  }
  return violations;
}

/** The most runs of one group open at once (a sweep over starts and ends; ends first on a tie). */
export function maxOpen(
  intervals: RunInterval[],
  openUntil: (run: RunRecord) => number,
  groupOf: (run: RunRecord) => string | undefined = () => '',
  within: { from: number; to: number } = { from: -Infinity, to: Infinity },
): number {
  const edges = new Map<string, [number, number][]>();
  for (const interval of intervals) {
    const group = groupOf(interval.run);
    if (group === undefined) continue;
    const end = interval.end ?? openUntil(interval.run);
    if (end <= within.from || interval.start >= within.to) continue;
    const list = edges.get(group) ?? [];
    list.push([Math.max(interval.start, within.from), 1], [Math.min(end, within.to), -1]);
    edges.set(group, list);
  }
  let most = 0;
  for (const list of edges.values()) {
    list.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let open = 0;
    for (const [, delta] of list) most = Math.max(most, (open += delta));
  }
  return most;
}

/** The most starts in any window [t, t + windowMs), exactly (t runs over the starts), and where it was. */
export function maxStartsInWindow(starts: number[], windowMs: number): { count: number; from: number } {
  const sorted = [...starts].sort((a, b) => a - b);
  let best = { count: 0, from: sorted[0] ?? 0 };
  let last = 0;
  for (let first = 0; first < sorted.length; first++) {
    while (last < sorted.length && sorted[last]! < sorted[first]! + windowMs) last++;
    if (last - first > best.count) best = { count: last - first, from: sorted[first]! };
  }
  return best;
}

/** Prints a test's figures on one line (`key=value …`), for the closing note. */
export function reportFigures(figures: Record<string, string | number>): void {
  process.stdout.write(
    `${Object.entries(figures)
      .map(([key, value]) => `${key}=${value}`)
      .join(' ')}\n`,
  );
}
