/**
 * Retention on every database (rows inserted with raw SQL, pruned by RetentionPruner.pruneNow() or
 * its timer): the history by age and by count per queue and per event class, the failed store by
 * keepFailed, throughput minutes, dead process rows, batches of at most PRUNE_BATCH_SIZE rows, one
 * replica per turn, errors that are logged, and claims that a long turn never holds up; then two real
 * replica processes sharing one database (a server's, or one SQLite file), of which exactly one prunes
 * each turn, and the other takes over when that one is killed.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { jest } from '@jest/globals';
import type { DataSource } from 'typeorm';
import { BaseEvent, QueueEvent, RetentionPruner, type WorkerModuleOptions } from '../lib/index.js';
import { PRUNE_BATCH_SIZE } from '../lib/worker.defaults.js';
import { testDatabases } from './support/databases.js';
import {
  createPeerApp,
  createTestApp,
  execute,
  pendingRows,
  RecordingLogger,
  runOncePass,
  sleep,
  type TestApp,
  waitFor,
} from './support/test-app.js';
import { buildWorkerProcess, compiledFixture, SharedQueue } from './support/worker-processes.js';

jest.setTimeout(120_000);

const HOUR = 3600_000;

@QueueEvent('r-class', { keepCompleted: { maxAgeSeconds: 3600 } })
class KeptAnHourEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

@QueueEvent('r-class')
class PlainEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

@QueueEvent('r-class-only', { keepCompleted: { maxCount: 2 } })
class KeptTwoEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

const EVENTS = [KeptAnHourEvent, PlainEvent, KeptTwoEvent];

/** What happened, in order, in the test of claims during a prune turn. */
const claimOrder: string[] = [];

@QueueEvent('r-claims')
class ClaimedDuringPruneEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    claimOrder.push('event ran');
  }
}

interface HistoryRow {
  id: number;
  queue: string;
  event?: string;
  finishedAt: number;
}

/** Inserts rows in statements of 200 (`columns` in order, one array of values per row). */
async function insertRows(dataSource: DataSource, table: string, columns: string[], rows: unknown[][]): Promise<void> {
  for (let start = 0; start < rows.length; start += 200) {
    const chunk = rows.slice(start, start + 200);
    const tuple = `(${columns.map(() => '?').join(', ')})`;
    await execute(
      dataSource,
      `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => tuple).join(', ')}`,
      chunk.flat(),
    );
  }
}

function insertHistory(dataSource: DataSource, rows: HistoryRow[]): Promise<void> {
  return insertRows(
    dataSource,
    'nestjs_workers_history',
    [
      'id',
      'queue_name',
      'event_name',
      'payload',
      'attempts',
      'retries',
      'priority',
      'state',
      'created_at',
      'updated_at',
      'available_at',
      'finished_at',
    ],
    rows.map((row) => [
      row.id,
      row.queue,
      row.event ?? 'PlainEvent',
      'null',
      1,
      3,
      0,
      'completed',
      row.finishedAt - 10,
      row.finishedAt,
      row.finishedAt - 10,
      row.finishedAt,
    ]),
  );
}

/**
 * `count` history rows of `queue` (ids from `firstId`, finished 1 ms apart from `finishedFrom` on) in one
 * INSERT … SELECT over a generated sequence (five cross-joined digit tables: up to 100,000 rows), so
 * that tens of thousands of rows take one statement on every database.
 */
async function insertHistorySequence(
  dataSource: DataSource,
  queue: string,
  firstId: number,
  count: number,
  finishedFrom: number,
): Promise<void> {
  const digits = Array.from({ length: 10 }, (_, digit) => `SELECT ${digit} AS d`).join(' UNION ALL ');
  const places = ['d0', 'd1', 'd2', 'd3', 'd4'];
  const n = places.map((place, index) => `${place}.d * ${10 ** index}`).join(' + ');
  const from = places.map((place) => `(${digits}) ${place}`).join(' CROSS JOIN ');
  await dataSource.query(
    'INSERT INTO nestjs_workers_history (id, queue_name, event_name, payload, attempts, retries, priority, state, ' +
      'created_at, updated_at, available_at, finished_at) ' +
      `SELECT ${firstId} + seq.n, '${queue}', 'PlainEvent', 'null', 1, 3, 0, 'completed', ${finishedFrom - 10} + seq.n, ` +
      `${finishedFrom} + seq.n, ${finishedFrom - 10} + seq.n, ${finishedFrom} + seq.n ` +
      `FROM (SELECT ${n} AS n FROM ${from}) seq WHERE seq.n < ${count}`,
  );
}

function insertFailed(dataSource: DataSource, rows: { queue: string; failedAt: number }[]): Promise<void> {
  return insertRows(
    dataSource,
    'nestjs_failed_workers',
    [
      'queue_name',
      'event_name',
      'payload',
      'attempts',
      'retries',
      'priority',
      'error',
      'failed_at',
      'created_at',
      'updated_at',
    ],
    rows.map((row) => [row.queue, 'PlainEvent', 'null', 3, 3, 0, 'boom', row.failedAt, row.failedAt, row.failedAt]),
  );
}

/** The ids left in a table (for one queue), ascending. */
async function idsOf(dataSource: DataSource, table: string, queue?: string): Promise<number[]> {
  const rows = (await execute(
    dataSource,
    `SELECT id FROM ${table}${queue === undefined ? '' : ' WHERE queue_name = ?'} ORDER BY id`,
    queue === undefined ? [] : [queue],
  )) as { id: string | number }[];
  return rows.map((row) => Number(row.id));
}

async function countOf(dataSource: DataSource, table: string): Promise<number> {
  const [row] = (await dataSource.query(`SELECT COUNT(*) AS n FROM ${table}`)) as { n: string | number }[];
  return Number(row!.n);
}

/** `count` history rows of `queue` with ids from `firstId`, finished `ageMs` ago (1 ms apart). */
function aged(queue: string, firstId: number, count: number, ageMs: number, event?: string): HistoryRow[] {
  const now = Date.now();
  return Array.from({ length: count }, (_, index) => ({
    id: firstId + index,
    queue,
    event,
    finishedAt: now - ageMs + index,
  }));
}

describe.each(testDatabases())('retention ($name)', (database) => {
  const apps: TestApp[] = [];

  async function start(options: WorkerModuleOptions): Promise<{ t: TestApp; pruner: RetentionPruner }> {
    const t = await createTestApp({ events: EVENTS, ...options }, {}, database);
    apps.push(t);
    return { t, pruner: t.app.get(RetentionPruner) };
  }

  afterEach(async () => {
    for (const t of apps.splice(0).reverse()) await t.close();
  });

  it("prunes a queue's history by maxAgeSeconds and by maxCount (newest by finished_at, then id), other queues untouched", async () => {
    const { t, pruner } = await start({
      queues: {
        'r-age': { keepCompleted: { maxAgeSeconds: 3600 } },
        'r-count': { keepCompleted: { maxCount: 3 } },
        'r-kept': { keepCompleted: true },
        'r-off': {},
      },
    });
    const now = Date.now();
    await insertHistory(t.dataSource, [
      ...aged('r-age', 1, 3, 2 * HOUR),
      ...aged('r-age', 4, 2, 60_000),
      // Three rows share one millisecond (a batch of completions): the newest three by (finished_at, id) stay.
      { id: 10, queue: 'r-count', finishedAt: now - 5000 },
      { id: 11, queue: 'r-count', finishedAt: now - 4000 },
      { id: 12, queue: 'r-count', finishedAt: now - 3000 },
      { id: 13, queue: 'r-count', finishedAt: now - 3000 },
      { id: 14, queue: 'r-count', finishedAt: now - 3000 },
      { id: 9, queue: 'r-count', finishedAt: now - 1000 },
      ...aged('r-kept', 20, 3, 100 * HOUR),
      ...aged('r-off', 30, 3, 100 * HOUR),
    ]);

    const report = await pruner.pruneNow();

    expect(await idsOf(t.dataSource, 'nestjs_workers_history', 'r-age')).toEqual([4, 5]);
    expect(await idsOf(t.dataSource, 'nestjs_workers_history', 'r-count')).toEqual([9, 13, 14]);
    expect(await idsOf(t.dataSource, 'nestjs_workers_history', 'r-kept')).toEqual([20, 21, 22]);
    expect(await idsOf(t.dataSource, 'nestjs_workers_history', 'r-off')).toEqual([30, 31, 32]);
    expect(report).toMatchObject({ history: 6, failed: 0, complete: true });
  });

  it("applies an event class's keepCompleted to its rows instead of its queue's, and the queue's to the queue's other event names", async () => {
    const { t, pruner } = await start({ queues: { 'r-class': { keepCompleted: { maxCount: 1 } } } });
    await insertHistory(t.dataSource, [
      // KeptAnHourEvent keeps an hour, whatever the queue's maxCount.
      ...aged('r-class', 1, 2, 2 * HOUR, 'KeptAnHourEvent'),
      ...aged('r-class', 3, 3, 60_000, 'KeptAnHourEvent'),
      // The queue's other names (a class without a rule of its own, a name no class has) share its maxCount 1.
      ...aged('r-class', 10, 3, 5 * HOUR, 'PlainEvent'),
      ...aged('r-class', 13, 1, 1000, 'RetiredEvent'),
      // Queue r-class-only keeps nothing itself (no keepCompleted): only KeptTwoEvent's maxCount 2 prunes there.
      ...aged('r-class-only', 20, 4, 100 * HOUR, 'KeptTwoEvent'),
      ...aged('r-class-only', 30, 3, 100 * HOUR, 'PlainEvent'),
    ]);

    const report = await pruner.pruneNow();

    expect(await idsOf(t.dataSource, 'nestjs_workers_history', 'r-class')).toEqual([3, 4, 5, 13]);
    expect(await idsOf(t.dataSource, 'nestjs_workers_history', 'r-class-only')).toEqual([22, 23, 30, 31, 32]);
    expect(report.history).toBe(2 + 3 + 2);
  });

  it('prunes the failed store of a queue by keepFailed (age, then count), and no other queue', async () => {
    const { t, pruner } = await start({
      queues: { 'r-failed': { keepFailed: { maxAgeSeconds: 3600, maxCount: 2 } }, 'r-failed-other': {} },
    });
    const now = Date.now();
    await insertFailed(t.dataSource, [
      { queue: 'r-failed', failedAt: now - 3 * HOUR }, // 1
      { queue: 'r-failed', failedAt: now - 2 * HOUR }, // 2
      { queue: 'r-failed', failedAt: now - 30_000 }, // 3
      { queue: 'r-failed', failedAt: now - 20_000 }, // 4
      { queue: 'r-failed', failedAt: now - 10_000 }, // 5
      { queue: 'r-failed-other', failedAt: now - 100 * HOUR }, // 6
    ]);

    const report = await pruner.pruneNow();

    expect(await idsOf(t.dataSource, 'nestjs_failed_workers')).toEqual([4, 5, 6]);
    expect(report).toMatchObject({ failed: 3, history: 0 });
  });

  it('deletes throughput minutes older than throughputRetentionSeconds and keeps the newer ones', async () => {
    const { t, pruner } = await start({ throughputRetentionSeconds: 3600 });
    const minute = (ago: number): number => Math.floor((Date.now() - ago) / 60_000) * 60_000;
    const minutes = [minute(2 * HOUR), minute(HOUR + 120_000), minute(HOUR - 120_000), minute(60_000)];
    await insertRows(
      t.dataSource,
      'nestjs_workers_throughput',
      ['queue_name', 'minute', 'event_name', 'completed'],
      minutes.flatMap((at) => [
        ['r-tp', at, 'PlainEvent', 5],
        ['r-tp', at, 'KeptTwoEvent', 1],
      ]),
    );

    const report = await pruner.pruneNow();

    const left = (await t.dataSource.query(
      'SELECT minute FROM nestjs_workers_throughput ORDER BY minute, event_name',
    )) as { minute: string | number }[];
    expect(left.map((row) => Number(row.minute))).toEqual([minutes[2], minutes[2], minutes[3], minutes[3]]);
    expect(report.throughput).toBe(4);
  });

  it('removes the rows of processes silent for a few leases and keeps the live ones', async () => {
    const { t, pruner } = await start({ leaseSeconds: 2 });
    const now = Date.now();
    await insertRows(
      t.dataSource,
      'nestjs_workers_processes',
      ['id', 'host', 'pid', 'queues', 'concurrency', 'running', 'started_at', 'heartbeat_at'],
      [
        ['gone-long-ago', 'h1', 1, '["a"]', 1, 0, now - HOUR, now - 60_000],
        ['gone-three-leases', 'h1', 2, '["a"]', 1, 0, now - HOUR, now - 7000],
        ['live', 'h2', 3, '["a"]', 1, 1, now - HOUR, now - 500],
        ['one-lease-late', 'h2', 4, '["a"]', 1, 1, now - HOUR, now - 3000],
      ],
    );

    const report = await pruner.pruneNow();

    const left = (await t.dataSource.query('SELECT id FROM nestjs_workers_processes ORDER BY id')) as { id: string }[];
    expect(left.map((row) => row.id)).toEqual(['live', 'one-lease-late']);
    expect(report.processes).toBe(2);
  });

  it(`deletes in statements of at most PRUNE_BATCH_SIZE (${PRUNE_BATCH_SIZE}) rows until every row to prune is gone`, async () => {
    const { t, pruner } = await start({
      queues: {
        'r-batch': { keepCompleted: { maxAgeSeconds: 3600 } },
        'r-batch-count': { keepCompleted: { maxCount: 5 } },
      },
    });
    const extra = 7;
    await insertHistory(t.dataSource, [
      ...aged('r-batch', 1, PRUNE_BATCH_SIZE + extra, 2 * HOUR),
      ...aged('r-batch', 5000, 2, 1000),
      ...aged('r-batch-count', 10_000, PRUNE_BATCH_SIZE + 5 + extra, 1000),
    ]);

    const report = await pruner.pruneNow();

    expect(await idsOf(t.dataSource, 'nestjs_workers_history', 'r-batch')).toEqual([5000, 5001]);
    const newestFive = Array.from({ length: 5 }, (_, index) => 10_000 + PRUNE_BATCH_SIZE + extra + index);
    expect(await idsOf(t.dataSource, 'nestjs_workers_history', 'r-batch-count')).toEqual(newestFive);
    expect(report.history).toBe(2 * (PRUNE_BATCH_SIZE + extra));
    // Two for each step of these queues (a full batch, then the rest); one for KeptAnHourEvent's own age
    // rule (queue r-class), one each for throughput, processes and throttles. KeptTwoEvent's queue has
    // fewer rows than its maxCount: no DELETE at all.
    expect(report).toMatchObject({ statements: 2 + 2 + 1 + 1 + 1 + 1, complete: true });
  });

  it('ends a turn under way after its current statement when the application closes, before the DataSource does', async () => {
    const { t, pruner } = await start({ queues: { 'r-stop': { keepCompleted: { maxAgeSeconds: 3600 } } } });
    const rows = 30 * PRUNE_BATCH_SIZE;
    await insertHistory(t.dataSource, aged('r-stop', 1, rows, 2 * HOUR));
    const left = async (): Promise<number> => countOf(t.dataSource, 'nestjs_workers_history');

    // A second app on the database reads what is left once the first one has closed.
    const peer = await createPeerApp(t, { events: EVENTS }, database);
    apps.unshift(peer);

    const pruning = pruner.pruneNow();
    await waitFor(async () => (await left()) < rows, 10_000);
    const closed = apps.pop()!.close();
    const report = await pruning;
    await closed;

    expect(report.complete).toBe(false);
    expect(report.history).toBeGreaterThan(0);
    expect(report.history).toBeLessThan(rows);
    // Whole statements only, and nothing after the stop: what the report counts is exactly what is gone.
    expect(await countOf(peer.dataSource, 'nestjs_workers_history')).toBe(rows - report.history);
  });

  it('never blocks claims: an event dispatched while a turn deletes 30 batches is run to completion before the turn ends', async () => {
    const options: WorkerModuleOptions = {
      events: [ClaimedDuringPruneEvent],
      queues: { 'r-claims': { keepCompleted: { maxAgeSeconds: 3600 } } },
    };
    const { t, pruner } = await start(options);
    // The worker is another replica: its own connection (its own SQLite connection on the file).
    const peer = await createPeerApp(t, options, database);
    apps.unshift(peer);
    const rows = 30 * PRUNE_BATCH_SIZE;
    // Ids far above the pending ids: the event's history row takes its pending row's id.
    await insertHistorySequence(t.dataSource, 'r-claims', 1_000_000, rows, Date.now() - 2 * HOUR);
    expect(await countOf(peer.dataSource, 'nestjs_workers_history')).toBe(rows);
    claimOrder.length = 0;

    const started = Date.now();
    let turnMs = 0;
    const pruning = pruner.pruneNow().then((report) => {
      turnMs = Date.now() - started;
      claimOrder.push('turn ended');
      return report;
    });
    // Under way, and its batches are committed one by one: the other replica sees fewer rows.
    await waitFor(async () => (await countOf(peer.dataSource, 'nestjs_workers_history')) < rows, 30_000);
    const claimStarted = Date.now();
    await peer.events.dispatch(new ClaimedDuringPruneEvent(null));
    await peer.workers.runWorker(runOncePass('r-claims'));
    const claimMs = Date.now() - claimStarted;
    const leftWhenCompleted = await countOf(peer.dataSource, 'nestjs_workers_history');
    claimOrder.push('event completed');
    const report = await pruning;

    process.stdout.write(
      `database=${database.name} rows=${rows} turnMs=${turnMs} claimMs=${claimMs} leftWhenCompleted=${leftWhenCompleted}\n`,
    );
    expect(claimOrder).toEqual(['event ran', 'event completed', 'turn ended']);
    expect(await pendingRows(peer.dataSource)).toEqual([]);
    // The turn pruned every old row, and kept the event's own history row (finished just now).
    expect(report).toMatchObject({ history: rows, complete: true });
    const left = (await peer.dataSource.query('SELECT id, event_name FROM nestjs_workers_history')) as {
      event_name: string;
    }[];
    expect(left.map((row) => row.event_name)).toEqual(['ClaimedDuringPruneEvent']);
  });

  it('lets one replica prune a turn: of two apps ticking in the same turn, exactly one prunes', async () => {
    const options: WorkerModuleOptions = {
      events: EVENTS,
      queues: { 'r-turn': { keepCompleted: { maxAgeSeconds: 3600 } } },
      pruneIntervalSeconds: 24 * 3600,
    };
    const { t, pruner } = await start(options);
    const peer = await createPeerApp(t, options, database);
    apps.push(peer);
    await insertHistory(t.dataSource, aged('r-turn', 1, 5, 2 * HOUR));

    const reports = await Promise.all([pruner.tick(), peer.app.get(RetentionPruner).tick(), pruner.tick()]);

    expect(reports.filter((report) => report !== undefined)).toEqual([expect.objectContaining({ history: 5 })]);
    expect(await countOf(t.dataSource, 'nestjs_workers_history')).toBe(0);
    // The turn is taken: later ticks in it prune nothing, even with rows to prune.
    await insertHistory(t.dataSource, aged('r-turn', 10, 2, 2 * HOUR));
    expect(await peer.app.get(RetentionPruner).tick()).toBeUndefined();
    expect(await countOf(t.dataSource, 'nestjs_workers_history')).toBe(2);
    // A turn row deleted by hand (the tables emptied, say) is created again, at the latest by the tick
    // after the one that misses it.
    await t.dataSource.query('DELETE FROM nestjs_workers_schedules');
    const ticks = [await pruner.tick(), await pruner.tick()];
    expect(ticks.filter((report) => report !== undefined)).toEqual([expect.objectContaining({ history: 2 })]);
  });

  it('prunes in the background every pruneIntervalSeconds, logs a failed turn without stopping, and stops on close', async () => {
    const logger = new RecordingLogger();
    const { t } = await start({
      autoStart: true,
      logger,
      queues: { 'r-auto': { keepCompleted: { maxAgeSeconds: 3600 } } },
      pruneIntervalSeconds: 0.1,
    });
    await insertHistory(t.dataSource, aged('r-auto', 1, 3, 2 * HOUR));
    await waitFor(async () => (await countOf(t.dataSource, 'nestjs_workers_history')) === 0);

    await t.dataSource.query('ALTER TABLE nestjs_workers_history RENAME TO r_history_away');
    try {
      await waitFor(() => logger.messages('error').some((message) => message.startsWith('Pruning failed')));
    } finally {
      await t.dataSource.query('ALTER TABLE r_history_away RENAME TO nestjs_workers_history');
    }
    // The turns go on after the failed one (a turn that failed midway logs no "Prune turn" line).
    const turnsSoFar = logger.messages('debug').filter((message) => message.startsWith('Prune turn')).length;
    await insertHistory(t.dataSource, aged('r-auto', 10, 3, 2 * HOUR));
    await waitFor(async () => (await countOf(t.dataSource, 'nestjs_workers_history')) === 0);
    await waitFor(
      () => logger.messages('debug').filter((message) => message.startsWith('Prune turn')).length > turnsSoFar,
    );

    await apps.pop()!.close();
    // Nothing prunes once closed: no timer is left (Jest would also report an open handle).
    const turns = logger.messages('debug').filter((message) => message.startsWith('Prune turn')).length;
    await sleep(300);
    expect(logger.messages('debug').filter((message) => message.startsWith('Prune turn')).length).toBe(turns);
  });
});

/** A replica process of test/fixtures/prune-process.ts, its output kept. */
class PruneProcess {
  output = '';
  readonly exited: Promise<void>;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  static async start(label: string, queue: SharedQueue): Promise<PruneProcess> {
    const child = spawn(process.execPath, [compiledFixture('prune-process.js')], {
      env: {
        ...process.env,
        NODE_OPTIONS: '',
        MP_DB_TYPE: queue.database.type,
        MP_DB_URL: queue.url,
        MP_PRUNE_INTERVAL: '0.2',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const replica = new PruneProcess(label, child);
    await waitFor(() => replica.output.includes('ready') || child.exitCode !== null, 30_000);
    if (!replica.output.includes('ready')) throw new Error(`${label} exited:\n${replica.output}`);
    return replica;
  }

  /** The turns it took, as "name@slot". */
  get turns(): string[] {
    return [...this.output.matchAll(/^debug Prune turn (\S+):/gm)].map((match) => match[1]!);
  }

  get errors(): string[] {
    return this.output.split('\n').filter((line) => line.startsWith('error ') || line.startsWith('warn '));
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

describe.each(testDatabases())('retention with replica processes on $name', (database) => {
  let queue: SharedQueue;
  const replicas: PruneProcess[] = [];

  beforeAll(async () => {
    buildWorkerProcess();
    queue = await SharedQueue.open(database);
  });

  beforeEach(async () => {
    await queue.reset();
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.stop('SIGKILL')));
  });

  afterAll(async () => {
    await queue?.close();
  });

  const historyCount = (): Promise<number> => countOf(queue.dataSource, 'nestjs_workers_history');

  it('two replicas share the pruning: each turn is pruned by one of them, and the other takes over when it dies', async () => {
    replicas.push(await PruneProcess.start('a', queue), await PruneProcess.start('b', queue));
    const [a, b] = replicas as [PruneProcess, PruneProcess];
    let nextId = 1;
    for (let round = 0; round < 3; round++) {
      await insertHistory(queue.dataSource, [
        ...aged('mp-prune', nextId, 50, 2 * HOUR),
        ...aged('mp-prune', nextId + 50, 1, 0),
      ]);
      nextId += 51;
      await waitFor(async () => (await historyCount()) === round + 1, 30_000);
    }
    // Let a few more turns pass, with nothing to delete.
    await waitFor(() => a.turns.length + b.turns.length >= 5, 20_000);
    const turns = [...a.turns, ...b.turns];
    expect(turns.length).toBeGreaterThanOrEqual(5);
    expect(new Set(turns).size).toBe(turns.length);

    // The replica that took the last turn dies without warning; the other one prunes from then on.
    const [winner, other] = a.turns.at(-1)! > (b.turns.at(-1) ?? '') ? [a, b] : [b, a];
    await winner.stop('SIGKILL');
    const otherTurns = other.turns.length;
    await insertHistory(queue.dataSource, aged('mp-prune', nextId, 50, 2 * HOUR));
    await waitFor(async () => (await historyCount()) === 3, 30_000);
    // Its "Prune turn" line comes through the pipe after the rows are gone: wait for it as well.
    await waitFor(() => other.turns.length > otherTurns, 30_000);

    await other.stop();
    const figures = { turnsA: a.turns.length, turnsB: b.turns.length, survivor: other.label };
    process.stdout.write(`${JSON.stringify(figures)}\n`);
    expect([...a.errors, ...b.errors]).toEqual([]);
    const allTurns = [...a.turns, ...b.turns];
    expect(new Set(allTurns).size).toBe(allTurns.length);
  });
});
