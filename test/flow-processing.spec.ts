/**
 * The run loop under flow-control limits, on every database, with two WorkerModule applications on one
 * database (what two replicas are): every execute() start and end is recorded in memory. A queue with
 * globalConcurrency 3 never runs more than 3 at once though each application may run 5; keyConcurrency
 * 1 runs at most one per key; a rate limit of 5/s never starts more than 5 in any second and, with a
 * backlog, reaches at least 80 % of the rate although the queues poll only every 5 s (the loop claims
 * again at the instant the limit frees budget). A paused limited queue runs nothing; a rate-limited
 * event that cannot start within the start grace of its claim is given back unstarted. Each test
 * prints its figures.
 */
import { BaseEvent, QueueEvent, type WorkerModuleOptions } from '../lib/index.js';
import { testDatabases } from './support/databases.js';
import {
  createPeerApp,
  createTestApp,
  execute,
  pendingRows,
  RecordingLogger,
  sleep,
  type TestApp,
  waitFor,
} from './support/test-app.js';

/** Every execute() of the flow events: how many ran at once, over all and per key, and when each started. */
const tracker = {
  running: 0,
  maxRunning: 0,
  byKey: new Map<string, number>(),
  maxByKey: new Map<string, number>(),
  starts: [] as number[],
  finished: 0,
  reset(): void {
    this.running = 0;
    this.maxRunning = 0;
    this.byKey.clear();
    this.maxByKey.clear();
    this.starts = [];
    this.finished = 0;
  },
  async run(key: string, ms: number): Promise<void> {
    this.starts.push(performance.now());
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const onKey = (this.byKey.get(key) ?? 0) + 1;
    this.byKey.set(key, onKey);
    this.maxByKey.set(key, Math.max(this.maxByKey.get(key) ?? 0, onKey));
    try {
      await sleep(ms);
    } finally {
      this.running--;
      this.byKey.set(key, (this.byKey.get(key) ?? 1) - 1);
      this.finished++;
    }
  },
};

@QueueEvent('flow-global')
class GlobalEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    await tracker.run('', 40);
  }
}

@QueueEvent('flow-keys')
class KeyedEvent extends BaseEvent<{ key: string }> {
  async execute(): Promise<void> {
    await tracker.run(this.getPayload().key, 40);
  }
}

@QueueEvent('flow-rate')
class RatedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    await tracker.run('', 5);
  }
}

/** Ends (performance.now()) of the 'flow-slow' events, by label. */
const endedAt = new Map<string, number>();

@QueueEvent('flow-slow')
class SlowOrFastEvent extends BaseEvent<{ label: string; ms: number }> {
  async execute(): Promise<void> {
    await tracker.run('', this.getPayload().ms);
    endedAt.set(this.getPayload().label, performance.now());
  }
}

const EVENTS = [GlobalEvent, KeyedEvent, RatedEvent, SlowOrFastEvent];

const OPTIONS: WorkerModuleOptions = {
  events: EVENTS,
  queues: {
    'flow-global': { concurrency: 5, globalConcurrency: 3, pollIntervalMs: 100 },
    'flow-keys': { concurrency: 5, keyConcurrency: 1, pollIntervalMs: 100 },
    // Polled every 5 s: a rate of 5/s is only reached by claiming again when the limit frees budget.
    'flow-rate': { concurrency: 5, rateLimit: { limit: 5, intervalSeconds: 1 }, pollIntervalMs: 5000 },
    'flow-slow': { concurrency: 3, globalConcurrency: 3 },
  },
};

function report(figures: Record<string, string | number>): void {
  process.stdout.write(
    `${Object.entries(figures)
      .map(([key, value]) => `${key}=${value}`)
      .join(' ')}\n`,
  );
}

/** The most starts within any `windowMs` (each window beginning at a start). */
function maxStartsInWindow(starts: number[], windowMs: number): number {
  const sorted = [...starts].sort((a, b) => a - b);
  let max = 0;
  for (let first = 0, last = 0; first < sorted.length; first++) {
    while (last < sorted.length && sorted[last]! < sorted[first]! + windowMs) last++;
    max = Math.max(max, last - first);
  }
  return max;
}

describe.each(testDatabases())('the run loop under flow-control limits ($name)', (database) => {
  /** The application that dispatches (it polls nothing), and the two replicas that run the events. */
  let t: TestApp;
  const replicas: TestApp[] = [];

  beforeEach(async () => {
    tracker.reset();
    endedAt.clear();
    t = await createTestApp(OPTIONS, {}, database);
  });

  afterEach(async () => {
    for (const replica of replicas.splice(0)) await replica.close();
    await t.close();
  });

  async function startReplicas(options: Partial<WorkerModuleOptions> = {}): Promise<void> {
    for (let i = 0; i < 2; i++)
      replicas.push(await createPeerApp(t, { ...OPTIONS, autoStart: true, ...options }, database));
  }

  async function dispatchAll(count: number, event: (n: number) => BaseEvent<unknown>): Promise<string[]> {
    const ids: string[] = [];
    for (let n = 0; n < count; n++) ids.push((await t.events.dispatch(event(n)))!);
    return ids;
  }

  async function allDone(count: number, timeoutMs: number): Promise<void> {
    await waitFor(async () => tracker.finished === count && (await pendingRows(t.dataSource)).length === 0, timeoutMs);
  }

  it('globalConcurrency 3: two applications of concurrency 5 never run more than 3 at once', async () => {
    const count = 40;
    await dispatchAll(count, (n) => new GlobalEvent({ n }));
    const startedAt = performance.now();
    await startReplicas();
    await allDone(count, 30_000);
    report({
      test: 'global',
      db: database.name,
      events: count,
      maxRunning: tracker.maxRunning,
      ms: Math.round(performance.now() - startedAt),
    });
    expect(tracker.maxRunning).toBeLessThanOrEqual(3);
    // The limit is used, not just respected.
    expect(tracker.maxRunning).toBe(3);
    expect(tracker.finished).toBe(count);
  });

  it('keyConcurrency 1 with 4 keys: at most one per key, at most 4 at once', async () => {
    const keys = ['alice', 'bob', 'carol', 'dave'];
    const ids: string[] = [];
    for (let n = 0; n < 24; n++) {
      const key = keys[n % keys.length]!;
      ids.push((await t.events.dispatch(new KeyedEvent({ key }), { concurrencyKey: key }))!);
    }
    await startReplicas();
    await allDone(ids.length, 30_000);
    const perKey = Object.fromEntries(tracker.maxByKey);
    report({ test: 'keys', db: database.name, maxRunning: tracker.maxRunning, perKey: JSON.stringify(perKey) });
    expect(tracker.maxByKey).toEqual(new Map(keys.map((key) => [key, 1])));
    expect(tracker.maxRunning).toBeLessThanOrEqual(4);
    expect(tracker.maxRunning).toBeGreaterThan(1);
    expect(tracker.finished).toBe(ids.length);
  });

  it('rateLimit 5/s: never more than 5 starts in any second, ≥ 80 % of the rate with a backlog, polling every 5 s', async () => {
    const count = 25;
    await dispatchAll(count, (n) => new RatedEvent({ n }));
    await startReplicas();
    await allDone(count, 30_000);
    const sorted = [...tracker.starts].sort((a, b) => a - b);
    const spanMs = sorted[sorted.length - 1]! - sorted[0]!;
    // The first 5 start at once; each further second starts 5 more.
    const rate = ((count - 5) / spanMs) * 1000;
    const maxInSecond = maxStartsInWindow(sorted, 1000);
    report({
      test: 'rate',
      db: database.name,
      events: count,
      maxInSecond,
      spanMs: Math.round(spanMs),
      rate: rate.toFixed(2),
    });
    expect(maxInSecond).toBeLessThanOrEqual(5);
    expect(rate).toBeGreaterThanOrEqual(0.8 * 5);
  });

  it('claims as events finish: one slow event does not keep the other slots idle', async () => {
    await t.events.dispatch(new SlowOrFastEvent({ label: 'slow', ms: 1500 }));
    for (let n = 0; n < 20; n++) await t.events.dispatch(new SlowOrFastEvent({ label: `fast ${n}`, ms: 20 }));
    const result = await t.workers.runWorker({ queueName: 'flow-slow', retries: 1, runAfterSeconds: 0 });
    expect(result.processed).toBe(21);
    const slowEnd = endedAt.get('slow')!;
    const lastFast = Math.max(...[...endedAt].filter(([label]) => label !== 'slow').map(([, at]) => at));
    report({ test: 'slow', db: database.name, fastDoneBeforeSlowMs: Math.round(slowEnd - lastFast) });
    // The 20 fast events ran on the two other slots while the slow one ran (20 × 20 ms / 2 ≈ 0.2 s).
    expect(lastFast).toBeLessThan(slowEnd - 500);
    expect(tracker.maxRunning).toBe(3);
  });

  it('a paused limited queue runs nothing', async () => {
    await dispatchAll(3, (n) => new GlobalEvent({ n }));
    await execute(
      t.dataSource,
      'INSERT INTO nestjs_workers_queues (queue_name, paused, paused_at, updated_at) VALUES (?, 1, ?, ?)',
      ['flow-global', Date.now(), Date.now()],
    );
    const result = await t.workers.runWorker({ queueName: 'flow-global', retries: 3, runAfterSeconds: 0 });
    expect(result.processed).toBe(0);
    expect(tracker.starts).toHaveLength(0);
    expect(await pendingRows(t.dataSource)).toHaveLength(3);
  });

  it('gives back unstarted a rate-limited event it cannot start within the start grace', async () => {
    const logger = new RecordingLogger();
    const late = await createPeerApp(t, { ...OPTIONS, logger }, database);
    replicas.push(late);
    // No grace at all: every claimed event starts after its claim was sent, so none may start.
    late.workers.configure({ startGraceMs: 0 });
    await dispatchAll(3, (n) => new RatedEvent({ n }));
    const run = late.workers.runWorker({ queueName: 'flow-rate', retries: 3, runAfterSeconds: 0 });
    await waitFor(() => logger.messages('warn').some((line) => line.includes('given back unstarted')), 10_000);
    await late.workers.shutdown(1000);
    await run;
    expect(tracker.starts).toHaveLength(0);
    const rows = await pendingRows(t.dataSource);
    // Back in line, no attempt counted, no lease.
    expect(rows.map(({ attempts, lease_token }) => ({ attempts, lease_token }))).toEqual(
      Array.from({ length: 3 }, () => ({ attempts: 0, lease_token: null })),
    );
  });
});
