/**
 * Live state of running work on every database (issue #16, points 4 and 7): progress reported by
 * execute() is written with the heartbeat's lease renewal (coalesced, no statement of its own) and
 * shows in the pending row while the event runs; bad progress is refused with
 * UnserializableProgressError and nothing is written. Each WorkerService that polls keeps its row in
 * nestjs_workers_processes (queues, concurrency, running count, heartbeat on the database's clock),
 * removed on app.close(); with real worker processes, a SIGKILLed one stops refreshing its row.
 */
import { jest } from '@jest/globals';
import { ScheduleModule } from '@nestjs/schedule';
import { DataSource } from 'typeorm';
import {
  BaseEvent,
  type IWorkerModel,
  type IWorkerQueueRepository,
  QueueEvent,
  UnserializableProgressError,
  WORKER_REPOSITORY,
  type WorkerProcessDescription,
} from '../lib/index.js';
import { DEFAULT_CONCURRENCY, MAX_PROGRESS_BYTES } from '../lib/worker.defaults.js';
import { type TestDatabase, testDatabases } from './support/databases.js';
import {
  createTestApp,
  execute,
  RecordingLogger,
  runOncePass,
  sleep,
  type TestApp,
  waitFor,
} from './support/test-app.js';
import { workerProcessSuite } from './support/worker-processes.js';

jest.setTimeout(60_000);

interface Gate {
  open(): void;
  opened: Promise<void>;
}
function newGate(): Gate {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}
/** Opened by each test: the running events wait on it, so the test decides when they finish. */
let gate: Gate = newGate();
let burstSeen: Gate = newGate();
const started: string[] = [];

@QueueEvent('live-progress')
class ProgressEvent extends BaseEvent<{ reports: number; spreadMs: number }> {
  async execute(): Promise<void> {
    const { reports, spreadMs } = this.getPayload();
    // A burst before the first heartbeat: only its last value may reach the row.
    for (let step = 1; step <= reports; step++) this.reportProgress({ step, of: reports });
    started.push('burst');
    // The test looks at the row before any further report.
    await burstSeen.opened;
    // Then one report every spreadMs, several per heartbeat.
    for (let step = 1; step <= 10; step++) {
      await sleep(spreadMs);
      this.reportProgress(reports + step);
    }
    started.push('spread');
    await gate.opened;
  }
}

const refusals: { name: string; message: string; isProgressError: boolean }[] = [];

@QueueEvent('live-bad-progress')
class BadProgressEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    const bad: [string, unknown][] = [
      ['function', { done: () => 1 }],
      ['cycle', cycle],
      ['bigint', 10n],
      ['too large', { text: 'x'.repeat(MAX_PROGRESS_BYTES + 1) }],
      ['undefined', undefined],
    ];
    for (const [name, value] of bad) {
      try {
        this.reportProgress(value as never);
        refusals.push({ name, message: 'not refused', isProgressError: false });
      } catch (error) {
        refusals.push({
          name,
          message: (error as Error).message,
          isProgressError: error instanceof UnserializableProgressError,
        });
      }
    }
    started.push('bad');
    await gate.opened;
  }
}

@QueueEvent('live-a')
class BusyEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    started.push('busy');
    await gate.opened;
  }
}

interface ProcessRow extends WorkerProcessDescription {
  startedAt: number;
  heartbeatAt: number;
}

/** The rows of nestjs_workers_processes, read with raw SQL (listWorkers() is another part's). */
async function processRows(dataSource: DataSource): Promise<ProcessRow[]> {
  const rows = (await dataSource.query('SELECT * FROM nestjs_workers_processes ORDER BY id')) as Record<
    string,
    unknown
  >[];
  return rows.map((row) => ({
    id: String(row.id),
    host: String(row.host),
    pid: Number(row.pid),
    queues: JSON.parse(String(row.queues)) as string[],
    concurrency: Number(row.concurrency),
    running: Number(row.running),
    startedAt: Number(row.started_at),
    heartbeatAt: Number(row.heartbeat_at),
  }));
}

async function progressColumn(dataSource: DataSource): Promise<string | null> {
  const [row] = (await dataSource.query('SELECT progress FROM nestjs_workers')) as { progress: string | null }[];
  return row!.progress;
}

/** The database's now, epoch ms (each spelling, in the test only: the library's are on its dialects). */
async function databaseNow(t: TestApp): Promise<number> {
  const type = t.dataSource.options.type;
  const sql =
    type === 'postgres'
      ? 'SELECT floor(extract(epoch from clock_timestamp()) * 1000) AS now'
      : type === 'better-sqlite3'
        ? "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS now"
        : 'SELECT FLOOR(UNIX_TIMESTAMP(NOW(3)) * 1000) AS now';
  const [row] = (await t.dataSource.query(sql)) as { now: string | number }[];
  return Number(row!.now);
}

interface RenewalCall {
  at: number;
  progress?: Map<string, string>;
}

/** The app's real repository, its renewLeases() wrapped to record each call (what the heartbeat sent). */
function recordRenewals(t: TestApp): RenewalCall[] {
  const repository = t.app.get<IWorkerQueueRepository>(WORKER_REPOSITORY);
  const renew = repository.renewLeases.bind(repository);
  const calls: RenewalCall[] = [];
  repository.renewLeases = (models: IWorkerModel[], leaseMs: number, progress?: ReadonlyMap<string, string>) => {
    calls.push({ at: Date.now(), progress: progress && new Map(progress) });
    return renew(models, leaseMs, progress);
  };
  return calls;
}

describe('reportProgress() outside a worker run', () => {
  it('checks the value the same way and then drops it: an event run by hand has no row to show it', async () => {
    const event = new BadProgressEvent(null);
    refusals.length = 0;
    gate = newGate();
    gate.open();
    await event.execute();
    expect(refusals.every((refusal) => refusal.isProgressError)).toBe(true);
    expect(() => new ProgressEvent({ reports: 1, spreadMs: 0 }).reportProgress({ step: 1 })).not.toThrow();
  });
});

describe.each(testDatabases())('live state ($name)', (database: TestDatabase) => {
  let t: TestApp;

  beforeEach(() => {
    started.length = 0;
    refusals.length = 0;
    gate = newGate();
    burstSeen = newGate();
  });

  afterEach(async () => {
    gate.open();
    burstSeen.open();
    await t?.close();
  });

  describe('progress', () => {
    const HEARTBEAT_MS = 200;

    beforeEach(async () => {
      t = await createTestApp(
        { events: [ProgressEvent, BadProgressEvent], leaseSeconds: 2, heartbeatSeconds: HEARTBEAT_MS / 1000 },
        {},
        database,
      );
    });

    it('shows the last reported value in the pending row while the event runs, written only by lease renewals', async () => {
      const calls = recordRenewals(t);
      await t.events.dispatch(new ProgressEvent({ reports: 500, spreadMs: 40 }));
      const runStartedAt = Date.now();
      const run = t.workers.runWorker(runOncePass('live-progress'));

      // Every value the row is seen holding was sent by a renewal before the read: no other write sets it.
      const sentValues = (): string[] => calls.flatMap((call) => [...(call.progress?.values() ?? [])]);
      const observed: string[] = [];
      const unexplained: string[] = [];
      const readProgress = async (): Promise<string | null> => {
        const sentBefore = sentValues();
        const value = await progressColumn(t.dataSource);
        if (value !== null) {
          observed.push(value);
          if (!sentBefore.includes(value) && !sentValues().includes(value)) unexplained.push(value);
        }
        return value;
      };

      // The burst of 500 reports: the row shows only the last, {"step":500}, and never an earlier one.
      await waitFor(() => started.includes('burst'), 5_000);
      await waitFor(async () => (await readProgress()) !== null, 5_000);
      expect(JSON.parse((await readProgress())!)).toEqual({ step: 500, of: 500 });
      // Every progress value the heartbeat sent was the run's latest; none of the burst's 499 others.
      expect(sentValues()).toEqual([JSON.stringify({ step: 500, of: 500 })]);
      burstSeen.open();

      // Ten more reports, one per 40 ms: 2-3 per heartbeat, so fewer writes than reports.
      await waitFor(() => started.includes('spread'), 5_000);
      await waitFor(async () => (await readProgress()) === '510', 2_000);
      expect(unexplained).toEqual([]);
      expect(new Set(observed).size).toBeGreaterThanOrEqual(2);
      const withProgress = calls.filter((call) => call.progress !== undefined);
      const values = withProgress.flatMap((call) => [...call.progress!.values()]);
      const elapsedMs = Date.now() - runStartedAt;
      process.stdout.write(
        `database=${database.name} reports=510 renewals=${calls.length} renewalsWithProgress=${withProgress.length} ` +
          `elapsedMs=${elapsedMs}\n`,
      );
      // Writes ride on renewals: the renewals are the heartbeat's own (one per interval, however many
      // reports), each carrying at most one value for the row.
      expect(calls.length).toBeLessThanOrEqual(Math.ceil(elapsedMs / HEARTBEAT_MS) + 1);
      expect(withProgress.every((call) => call.progress!.size === 1)).toBe(true);
      expect(withProgress.length).toBeLessThan(11);
      expect(values.at(-1)).toBe('510');
      // Once saved, a value is not sent again: later renewals carry no progress.
      const renewalsBefore = calls.length;
      await waitFor(() => calls.length >= renewalsBefore + 2, 2_000);
      expect(calls.slice(renewalsBefore).every((call) => call.progress === undefined)).toBe(true);

      gate.open();
      expect((await run).processed).toBe(1);
    });

    it('refuses a function, a cycle, BigInt, a value over MAX_PROGRESS_BYTES and undefined, and writes nothing', async () => {
      const calls = recordRenewals(t);
      await t.events.dispatch(new BadProgressEvent(null));
      const run = t.workers.runWorker(runOncePass('live-bad-progress'));
      await waitFor(() => started.includes('bad'), 5_000);
      // Several heartbeats pass while it runs: none has any progress to write.
      await waitFor(() => calls.length >= 3, 5_000);
      expect(await progressColumn(t.dataSource)).toBeNull();
      expect(calls.every((call) => call.progress === undefined)).toBe(true);
      expect(refusals.map(({ name, isProgressError }) => ({ name, isProgressError }))).toEqual(
        ['function', 'cycle', 'bigint', 'too large', 'undefined'].map((name) => ({ name, isProgressError: true })),
      );
      const messages = refusals.map((refusal) => refusal.message);
      expect(messages[0]).toMatch(/progress\.done.*function/);
      expect(messages[1]).toMatch(/cycle/);
      expect(messages[2]).toMatch(/BigInt/);
      expect(messages[3]).toMatch(new RegExp(`more than MAX_PROGRESS_BYTES \\(${MAX_PROGRESS_BYTES}\\)`));
      expect(messages[4]).toMatch(/undefined/);
      gate.open();
      expect((await run).processed).toBe(1);
    });
  });

  describe('worker process row', () => {
    const HEARTBEAT_MS = 250;

    it('registers queues and concurrency, advances heartbeat_at, counts running events, and is gone after app.close()', async () => {
      t = await createTestApp(
        {
          events: [BusyEvent],
          autoStart: true,
          leaseSeconds: 2,
          heartbeatSeconds: HEARTBEAT_MS / 1000,
          queues: {
            'live-a': { concurrency: 3, pollIntervalMs: 50 },
            'live-b': { concurrency: 2, pollIntervalMs: 50 },
          },
        },
        { imports: [ScheduleModule.forRoot()] },
        database,
      );
      // Another connection to the same database, to look at the table once the app has closed.
      const observer = await new DataSource(t.dataSource.options).initialize();
      try {
        await waitFor(async () => (await processRows(observer)).length === 1, 5_000);
        const [first] = await processRows(observer);
        // Every queue it polls: the two configured, and the queues of every @QueueEvent class loaded.
        expect(first).toMatchObject({ id: t.workers.workerId, pid: process.pid, running: 0 });
        expect(first!.queues).toEqual(expect.arrayContaining(['live-a', 'live-b']));
        expect(first!.queues).toEqual([...first!.queues].sort());
        expect(first!.concurrency).toBe(3 + 2 + (first!.queues.length - 2) * DEFAULT_CONCURRENCY);
        // On the database's clock.
        expect(Math.abs(first!.heartbeatAt - (await databaseNow(t)))).toBeLessThan(2_000);
        expect(first!.startedAt).toBeLessThanOrEqual(first!.heartbeatAt);

        await t.events.dispatch(new BusyEvent(null));
        await waitFor(() => started.includes('busy'), 5_000);
        await waitFor(async () => (await processRows(observer))[0]?.running === 1, 3_000);
        const busy = (await processRows(observer))[0]!;
        expect(busy.heartbeatAt).toBeGreaterThan(first!.heartbeatAt);
        expect(busy.startedAt).toBe(first!.startedAt);

        gate.open();
        await waitFor(async () => (await processRows(observer))[0]?.running === 0, 3_000);
        // The row vanished (pruned while the process was paused, say): the next beat inserts it again.
        await observer.query('DELETE FROM nestjs_workers_processes');
        await waitFor(async () => (await processRows(observer)).length === 1, 3_000);
        expect((await processRows(observer))[0]!.startedAt).toBe(first!.startedAt);

        await t.close();
        expect(await processRows(observer)).toEqual([]);
        // No beat after close() brings it back.
        await sleep(HEARTBEAT_MS * 3);
        expect(await processRows(observer)).toEqual([]);
      } finally {
        await observer.destroy();
      }
    });

    it('logs a row write that fails, and the work goes on', async () => {
      const logger = new RecordingLogger();
      t = await createTestApp({ events: [BusyEvent], heartbeatSeconds: 0.05, logger }, {}, database);
      const repository = t.app.get<IWorkerQueueRepository>(WORKER_REPOSITORY);
      let attempts = 0;
      repository.saveWorkerProcess = () => (attempts++, Promise.reject(new Error('processes table is gone')));
      gate.open();
      await t.events.dispatch(new BusyEvent(null));
      expect(await t.workers.runWorker(runOncePass('live-a'))).toMatchObject({ processed: 1, failed: 0 });
      // The heartbeat keeps trying.
      await waitFor(() => attempts >= 3, 3_000);
      expect(logger.messages('warn')).toContainEqual(
        expect.stringMatching(/Could not save the row of worker process .*processes table is gone/),
      );
    });

    it('is not written for an app that never runs a worker', async () => {
      t = await createTestApp({ events: [BusyEvent], heartbeatSeconds: 0.05 }, {}, database);
      await sleep(300);
      expect(await processRows(t.dataSource)).toEqual([]);
      // The first runWorker() registers it.
      await t.workers.runWorker(runOncePass('live-a'));
      await waitFor(async () => (await processRows(t.dataSource)).length === 1, 3_000);
      await execute(t.dataSource, 'DELETE FROM nestjs_workers_processes WHERE id = ?', [t.workers.workerId]);
    });
  });
});

// Real processes share one server database, or one SQLite file (WAL and busy timeout, as the module opens it).
describe.each(testDatabases())('worker process rows of real processes on $name', (database) => {
  const suite = workerProcessSuite(database);

  it('lists two processes with their pids; a SIGKILLed one stops refreshing while the other goes on', async () => {
    // Lease 2 s: heartbeats every 667 ms.
    const settings = { MP_LEASE_SECONDS: '2', MP_CONCURRENCY: '3' };
    const [one, two] = await Promise.all([suite.start('one', settings), suite.start('two', settings)]);
    const rows = (): Promise<ProcessRow[]> => processRows(suite.queue.dataSource);
    await waitFor(async () => (await rows()).length === 2, 20_000);
    const registered = await rows();
    expect(registered.map((row) => row.pid).sort()).toEqual([one.child.pid, two.child.pid].sort());
    for (const row of registered) {
      expect(row).toMatchObject({ queues: ['mp'], concurrency: 3, running: 0 });
      expect(row.id).toContain(`:${row.pid}:`);
    }

    one.kill('SIGKILL');
    await one.exited;
    const rowOf = async (pid: number | undefined): Promise<ProcessRow> =>
      (await rows()).find((row) => row.pid === pid)!;
    const killedAt = (await rowOf(one.child.pid)).heartbeatAt;
    const otherAt = (await rowOf(two.child.pid)).heartbeatAt;
    // Until the live one has refreshed its row a few times (3 heartbeats' worth, however slow the machine).
    await waitFor(async () => (await rowOf(two.child.pid)).heartbeatAt > otherAt + 2_000, 30_000);
    const killed = await rowOf(one.child.pid);
    const other = await rowOf(two.child.pid);
    process.stdout.write(
      `database=${database.name} killedHeartbeatAgeMs=${other.heartbeatAt - killed.heartbeatAt} ` +
        `otherAdvancedMs=${other.heartbeatAt - otherAt}\n`,
    );
    expect(killed.heartbeatAt).toBe(killedAt);

    // SIGTERM: a graceful stop removes the row.
    await two.stop();
    expect((await rows()).map((row) => row.pid)).toEqual([one.child.pid]);
  }, 120_000);
});
