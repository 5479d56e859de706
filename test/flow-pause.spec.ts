/**
 * Pause and resume a queue for every process on the database (WorkerFlowService), on every database:
 * a pause in one app stops the claims of another sharing the database, running events finish, events
 * dispatched while paused wait, resume lets them run within one poll (PostgreSQL: at once, through
 * NOTIFY), the pause survives a restart, statistics show it, and unknown queues are refused.
 */
import {
  BaseEvent,
  InvalidWorkerOptionsError,
  QueueEvent,
  UnknownQueueError,
  WorkerFlowService,
  type WorkerModuleOptions,
} from '../lib/index.js';
import { testDatabases } from './support/databases.js';
import {
  createPeerApp,
  createTestApp,
  RecordingLogger,
  runOncePass,
  sleep,
  type TestApp,
  tempDatabase,
  waitFor,
} from './support/test-app.js';

const QUEUE = 'flow-pause';
const ran: { n: number; at: number }[] = [];
/** Resolves the running gated events. */
let openGate: () => void = () => undefined;
let gate = Promise.resolve();

@QueueEvent(QUEUE)
class PausableEvent extends BaseEvent<{ n: number; gated?: boolean }> {
  async execute(): Promise<void> {
    const { n, gated } = this.getPayload();
    ran.push({ n, at: Date.now() });
    if (gated) await gate;
  }
}

/** Its queue is known only through this class (no `queues` entry). */
@QueueEvent('flow-pause-by-class')
class ClassQueueEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

/** Its queue has a global limit: its claims take the limited path, which reads the same flag. */
@QueueEvent('flow-pause-limited')
class LimitedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    ran.push({ n: this.getPayload().n, at: Date.now() });
  }
}

const POLL_MS = 100;

function options(overrides: Partial<WorkerModuleOptions> = {}): WorkerModuleOptions {
  return {
    events: [PausableEvent, ClassQueueEvent, LimitedEvent],
    queues: {
      [QUEUE]: { pollIntervalMs: POLL_MS, concurrency: 4 },
      'flow-pause-idle': {},
      'flow-pause-limited': { globalConcurrency: 2, concurrency: 2, pollIntervalMs: POLL_MS },
    },
    ...overrides,
  };
}

function flowOf(t: TestApp): WorkerFlowService {
  return t.app.get(WorkerFlowService);
}

describe.each(testDatabases())('pause and resume ($name)', (database) => {
  const apps: TestApp[] = [];
  const cleanups: (() => void)[] = [];

  async function open(promise: Promise<TestApp>): Promise<TestApp> {
    const t = await promise;
    apps.push(t);
    return t;
  }

  beforeEach(() => {
    ran.length = 0;
    gate = new Promise((resolve) => (openGate = resolve));
  });

  afterEach(async () => {
    openGate();
    for (const t of apps.splice(0).reverse()) await t.close();
    for (const cleanup of cleanups.splice(0)) cleanup();
  });

  it("stops another app's claims once the pause resolves, lets running events finish, and resumes within one poll", async () => {
    const logger = new RecordingLogger();
    const a = await open(createTestApp(options({ logger }), {}, database));
    const b = await open(createPeerApp(a, options({ autoStart: true }), database));

    // A running event of B, then the pause from A: it finishes, nothing new starts.
    await a.events.dispatch(new PausableEvent({ n: 0, gated: true }));
    await waitFor(() => ran.length === 1);
    await flowOf(a).pauseQueue(QUEUE);
    expect(await flowOf(b).isPaused(QUEUE)).toBe(true);
    await a.events.dispatch(new PausableEvent({ n: 1 }));
    await a.events.dispatch(new PausableEvent({ n: 2 }));
    openGate();
    await waitFor(async () => (await b.workers.getQueueStatistics([QUEUE]))[0]!.running === 0);
    // Several polls of B (and a wake-up per dispatch on PostgreSQL) and a claim of A's own: nothing taken.
    await sleep(POLL_MS * 5);
    expect((await a.workers.runWorker(runOncePass(QUEUE))).processed).toBe(0);
    expect(ran.map((entry) => entry.n)).toEqual([0]);
    expect((await a.workers.getQueueStatistics([QUEUE]))[0]).toMatchObject({ pending: 2, due: 2, paused: true });

    const resumedAt = Date.now();
    await flowOf(a).resumeQueue(QUEUE);
    await waitFor(() => ran.length === 3, 3000);
    expect(ran.slice(1).map((entry) => entry.n)).toEqual([1, 2]);
    // B polls every POLL_MS: its first poll after the resume claims them (PostgreSQL: woken sooner).
    expect(Math.max(...ran.slice(1).map((entry) => entry.at)) - resumedAt).toBeLessThan(POLL_MS + 400);
    expect(await flowOf(b).isPaused(QUEUE)).toBe(false);
    expect((await b.workers.getQueueStatistics([QUEUE]))[0]!.paused).toBe(false);
    expect(logger.messages('log').filter((line) => line.startsWith(`Queue ${QUEUE} `))).toEqual([
      expect.stringContaining(`Queue ${QUEUE} paused for every process`),
      expect.stringContaining(`Queue ${QUEUE} resumed`),
    ]);
  });

  it('pauses a queue with limits too (its claims take the limited path), for every app', async () => {
    const a = await open(createTestApp(options(), {}, database));
    const b = await open(createPeerApp(a, options(), database));
    await flowOf(a).pauseQueue('flow-pause-limited');
    await a.events.dispatchMany([1, 2, 3].map((n) => new LimitedEvent({ n })));
    expect((await b.workers.runWorker(runOncePass('flow-pause-limited'))).processed).toBe(0);
    expect((await a.workers.runWorker(runOncePass('flow-pause-limited'))).processed).toBe(0);
    expect((await b.workers.getQueueStatistics(['flow-pause-limited']))[0]).toMatchObject({ due: 3, paused: true });
    await flowOf(b).resumeQueue('flow-pause-limited');
    let processed = 0;
    for (let pass = 0; pass < 5 && processed < 3; pass++)
      processed += (await b.workers.runWorker(runOncePass('flow-pause-limited'))).processed;
    expect(processed).toBe(3);
    expect(ran.map((entry) => entry.n).sort()).toEqual([1, 2, 3]);
  });

  it('stays paused after the app closes and opens again, and lists the queue as paused', async () => {
    const kept = tempDatabase();
    cleanups.push(kept.cleanup);
    // SQLite: a file that outlives the first app; servers: the same test database.
    const file: Partial<WorkerModuleOptions> =
      database.type === 'better-sqlite3' ? { database: { database: kept.file } } : {};
    const first = await createTestApp(options(file), {}, database);
    await flowOf(first).pauseQueue(QUEUE);
    await flowOf(first).pauseQueue(QUEUE); // twice: harmless, the first pause's time is kept
    const [pausedBefore] = await flowOf(first).pausedQueues();
    await first.events.dispatch(new PausableEvent({ n: 1 }));
    await first.close();

    const again = await open(
      createTestApp(options({ ...file, autoStart: true }), {}, database, { emptyTables: false }),
    );
    await sleep(POLL_MS * 4);
    expect(ran).toEqual([]);
    expect(await flowOf(again).isPaused(QUEUE)).toBe(true);
    const paused = await flowOf(again).pausedQueues();
    expect(paused).toEqual([{ queueName: QUEUE, pausedAt: expect.any(Date) }]);
    expect(paused[0]!.pausedAt.getTime()).toBe(pausedBefore!.pausedAt.getTime());
    expect(Math.abs(paused[0]!.pausedAt.getTime() - Date.now())).toBeLessThan(60_000);

    await flowOf(again).resumeQueue(QUEUE);
    await waitFor(() => ran.length === 1, 3000);
    expect(await flowOf(again).pausedQueues()).toEqual([]);
  });

  it('shows a paused queue in the statistics, with or without rows, and a never-paused one as not paused', async () => {
    const t = await open(createTestApp(options(), {}, database));
    await flowOf(t).pauseQueue('flow-pause-idle');
    await flowOf(t).pauseQueue('flow-pause-by-class');
    await t.events.dispatch(new PausableEvent({ n: 1 }));
    // Listing every queue: the paused ones are there although they have no rows.
    const everything = await t.workers.getQueueStatistics();
    expect(everything.map(({ queueName, paused, pending }) => ({ queueName, paused, pending }))).toEqual([
      { queueName: QUEUE, paused: false, pending: 1 },
      { queueName: 'flow-pause-by-class', paused: true, pending: 0 },
      { queueName: 'flow-pause-idle', paused: true, pending: 0 },
      { queueName: 'flow-pause-limited', paused: false, pending: 0 },
    ]);
    const named = await t.workers.getQueueStatistics(['flow-pause-idle', 'never-paused', QUEUE]);
    expect(named.map((queue) => queue.paused)).toEqual([true, false, false]);
    expect(await flowOf(t).isPaused('never-paused')).toBe(false);
    await flowOf(t).resumeQueue('flow-pause-idle');
    expect((await t.workers.getQueueStatistics(['flow-pause-idle']))[0]!.paused).toBe(false);
    // A queue that is not paused resumes harmlessly.
    await flowOf(t).resumeQueue('flow-pause-idle');
    expect((await flowOf(t).pausedQueues()).map((queue) => queue.queueName)).toEqual(['flow-pause-by-class']);
  });

  it('refuses to pause or resume an unknown queue, naming it, and a queue name that is not one', async () => {
    const t = await open(createTestApp(options(), {}, database));
    const flow = flowOf(t);
    await expect(flow.pauseQueue('flow-paus')).rejects.toThrow(UnknownQueueError);
    await expect(flow.pauseQueue('flow-paus')).rejects.toThrow(/Unknown queue "flow-paus".*"flow-pause"/);
    await expect(flow.resumeQueue('nowhere')).rejects.toThrow(UnknownQueueError);
    // Names compare exactly: a trailing space is another queue.
    await expect(flow.pauseQueue(`${QUEUE} `)).rejects.toThrow(UnknownQueueError);
    await expect(flow.pauseQueue('')).rejects.toThrow(InvalidWorkerOptionsError);
    await expect(flow.pauseQueue(42 as unknown as string)).rejects.toThrow(/"queueName"/);
    await expect(flow.isPaused('x'.repeat(256))).rejects.toThrow(/"queueName": must be at most 255 characters/);
    expect(await flow.pausedQueues()).toEqual([]);
  });
});

const postgres = testDatabases().filter((database) => database.type === 'postgres');

describe.each(postgres)('resume wakes idle workers at once ($name)', (database) => {
  let a: TestApp | undefined;
  let b: TestApp | undefined;

  beforeEach(() => {
    ran.length = 0;
  });

  afterEach(async () => {
    await b?.close();
    await a?.close();
    a = b = undefined;
  });

  it("runs the waiting events of another app's workers without waiting for their minute-long poll", async () => {
    const slow = options({ queues: { [QUEUE]: { pollIntervalMs: 60_000 } } });
    a = await createTestApp(slow, {}, database);
    b = await createPeerApp(a, { ...slow, autoStart: true }, database);
    await sleep(200); // B's first poll at bootstrap found nothing
    await flowOf(a).pauseQueue(QUEUE);
    await a.events.dispatch(new PausableEvent({ n: 1 }));
    await sleep(300); // the dispatch's wake-up found the queue paused
    expect(ran).toEqual([]);
    const resumedAt = Date.now();
    await flowOf(a).resumeQueue(QUEUE);
    await waitFor(() => ran.length === 1, 2000);
    expect(ran[0]!.at - resumedAt).toBeLessThan(500);
  });
});
