/**
 * WorkerRateLimiter on every database: concurrent take() calls from several apps sharing the database
 * never get more starts than the limit in any window, take() waits for the window and then succeeds,
 * tryTake() says false when the budget is spent, a key's budget is its own, the signal and timeoutMs
 * stop a wait with typed errors (nothing taken), and malformed or unknown buckets are refused.
 */
import {
  BaseEvent,
  InvalidRateLimitBucketError,
  InvalidRateLimitTakeError,
  RateLimitAbortedError,
  RateLimitTimeoutError,
  QueueEvent,
  UnknownRateLimiterError,
  type WorkerModuleOptions,
  WorkerRateLimiter,
} from '../lib/index.js';
import { DEFAULT_START_GRACE_MS } from '../lib/worker.defaults.js';
import { serverDatabases, testDatabases } from './support/databases.js';
import { createPeerApp, createTestApp, type TestApp, waitFor } from './support/test-app.js';

/** The start grace application code's takes count past the interval (the claim's default). */
const GRACE_MS = DEFAULT_START_GRACE_MS;

const started: number[] = [];

/** Runs in a queue that takes from the `shared` limiter, as application code does. */
@QueueEvent('rate-shared')
class PartnerCallEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    started.push(Date.now());
  }
}

const OPTIONS: WorkerModuleOptions = {
  rateLimits: {
    partner: { limit: 3, intervalSeconds: 0.5 },
    quick: { limit: 2, intervalSeconds: 0.4 },
    slow: { limit: 1, intervalSeconds: 30 },
    shared: { limit: 2, intervalSeconds: 1 },
  },
  events: [PartnerCallEvent],
  queues: { 'rate-shared': { rateLimit: 'shared', pollIntervalMs: 50 } },
};

function limiterOf(t: TestApp): WorkerRateLimiter {
  return t.app.get(WorkerRateLimiter);
}

/** The starts the database recorded for a bucket, in database-clock ms, oldest first. */
async function startsOf(t: TestApp, name: string, bucketKey = ''): Promise<number[]> {
  const placeholders = t.dataSource.options.type === 'postgres' ? ['$1', '$2'] : ['?', '?'];
  const rows = (await t.dataSource.query(
    `SELECT started_at FROM nestjs_workers_rate_starts WHERE name = ${placeholders[0]} ` +
      `AND bucket_key = ${placeholders[1]} ORDER BY started_at`,
    [name, bucketKey],
  )) as { started_at: string | number }[];
  return rows.map((row) => Number(row.started_at));
}

/** The most instants of `times` that fall in one window [t, t + windowMs). */
function maxInWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let first = 0; first < sorted.length; first++) {
    let count = 0;
    for (let next = first; next < sorted.length && sorted[next]! < sorted[first]! + windowMs; next++) count++;
    most = Math.max(most, count);
  }
  return most;
}

describe.each(testDatabases())('WorkerRateLimiter ($name)', (database) => {
  const apps: TestApp[] = [];

  afterEach(async () => {
    for (const t of apps.splice(0).reverse()) await t.close();
  });

  async function threeApps(): Promise<TestApp[]> {
    const a = await createTestApp(OPTIONS, {}, database);
    apps.push(a);
    for (let peer = 0; peer < 2; peer++) apps.push(await createPeerApp(a, OPTIONS, database));
    return [...apps];
  }

  it('grants concurrent takes from several apps no more than the limit in any window, and all of them in time', async () => {
    const [a, ...peers] = await threeApps();
    const limiters = [a!, ...peers].map(limiterOf);
    const grantedAt: number[] = [];
    const began = Date.now();
    // 12 takes of a 3-per-0.5-s budget, 4 per app, all at once: four windows' worth.
    await Promise.all(
      Array.from({ length: 12 }, async (_, n) => {
        await limiters[n % limiters.length]!.take('partner');
        grantedAt.push(Date.now());
      }),
    );
    const starts = await startsOf(a!, 'partner');
    expect(starts).toHaveLength(12);
    // On the database's clock a start counts for interval + grace, and the process sees them alike.
    expect(maxInWindow(starts, 500 + GRACE_MS)).toBe(3);
    expect(maxInWindow(grantedAt, 500)).toBeLessThanOrEqual(3);
    // Three windows after the first: every take waited for the budget, not for a poll.
    expect(Date.now() - began).toBeGreaterThanOrEqual(3 * 500);
    expect(Date.now() - began).toBeLessThan(3 * (500 + GRACE_MS) + 2500);
  });

  it('waits for the window and then succeeds; tryTake says false while the budget is spent', async () => {
    const [a, b] = await threeApps();
    expect(await limiterOf(a!).tryTake('quick')).toBe(true);
    const firstAt = Date.now();
    expect(await limiterOf(b!).tryTake('quick')).toBe(true);
    expect(await limiterOf(b!).tryTake('quick')).toBe(false);
    expect(await limiterOf(a!).tryTake('quick')).toBe(false);
    await limiterOf(b!).take('quick');
    expect(Date.now() - firstAt).toBeGreaterThanOrEqual(400);
    expect(Date.now() - firstAt).toBeLessThan(400 + GRACE_MS + 1000);
    expect(await startsOf(a!, 'quick')).toHaveLength(3);
  });

  it("keeps a key's budget apart from the whole budget and from other keys", async () => {
    const [a, b] = await threeApps();
    expect(await limiterOf(a!).tryTake('slow:acct_42')).toBe(true);
    expect(await limiterOf(b!).tryTake('slow:acct_42')).toBe(false);
    expect(await limiterOf(b!).tryTake('slow:acct_43')).toBe(true);
    expect(await limiterOf(b!).tryTake('slow')).toBe(true);
    expect(await limiterOf(a!).tryTake('slow')).toBe(false);
    // Split at the first ':': the key is "a:b"; keys compare exactly ("acct_42 " is another key).
    expect(await limiterOf(a!).tryTake('slow:a:b')).toBe(true);
    expect(await limiterOf(a!).tryTake('slow:acct_42 ')).toBe(true);
    expect(await startsOf(a!, 'slow', 'a:b')).toHaveLength(1);
    expect(await startsOf(a!, 'slow', 'acct_42')).toHaveLength(1);
  });

  it('shares one budget with the workers of a queue that names the limiter, in another app', async () => {
    started.length = 0;
    const [a] = await threeApps();
    const workers = await createPeerApp(a!, { ...OPTIONS, autoStart: true }, database);
    apps.push(workers);
    // Application code spends the budget; the queue's events then wait for the window.
    expect(await limiterOf(a!).tryTake('shared')).toBe(true);
    const spentAt = Date.now();
    expect(await limiterOf(a!).tryTake('shared')).toBe(true);
    await a!.events.dispatchMany([new PartnerCallEvent(null), new PartnerCallEvent(null), new PartnerCallEvent(null)]);
    await waitFor(() => started.length === 2, 4000);
    expect(Math.min(...started) - spentAt).toBeGreaterThanOrEqual(1000);
    // The workers spent the next window: application code waits now, and the third event with it.
    expect(await limiterOf(a!).tryTake('shared')).toBe(false);
    await limiterOf(a!).take('shared', { timeoutMs: 3000 });
    await waitFor(() => started.length === 3, 4000);
    const starts = await startsOf(a!, 'shared');
    // Six at least: a worker gives back a claimed event it could not start within the grace (its
    // start stays spent). Never more than two in a window, whoever took them.
    expect(starts.length).toBeGreaterThanOrEqual(6);
    expect(maxInWindow(starts, 1000 + GRACE_MS)).toBe(2);
  });

  it('stops a wait on timeoutMs or the signal with typed errors, taking nothing', async () => {
    const [a] = await threeApps();
    const limiter = limiterOf(a!);
    await limiter.take('slow');
    // The next start is 30 s away: a short timeout fails at once, not after its time.
    const before = Date.now();
    await expect(limiter.take('slow', { timeoutMs: 200 })).rejects.toThrow(RateLimitTimeoutError);
    await expect(limiter.take('slow', { timeoutMs: 0 })).rejects.toThrow(/"slow".*within 0 ms \(timeoutMs\)/);
    expect(Date.now() - before).toBeLessThan(1000);

    const controller = new AbortController();
    const waiting = limiter.take('slow', { signal: controller.signal });
    setTimeout(() => controller.abort(new Error('client went away')), 150);
    const aborted = await waiting.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(aborted).toBeInstanceOf(RateLimitAbortedError);
    expect((aborted as Error).cause).toEqual(new Error('client went away'));
    await expect(limiter.take('slow', { signal: AbortSignal.abort() })).rejects.toThrow(RateLimitAbortedError);
    expect(await startsOf(a!, 'slow')).toHaveLength(1);
    expect(await limiter.tryTake('slow')).toBe(false);

    // A timeout long enough: granted once the window passes.
    await limiter.take('quick');
    await limiter.take('quick');
    await limiter.take('quick', { timeoutMs: 3000, signal: new AbortController().signal });
    expect(await startsOf(a!, 'quick')).toHaveLength(3);
  });

  it('refuses malformed and unknown buckets and bad take options with typed errors naming them', async () => {
    const [a] = await threeApps();
    const limiter = limiterOf(a!);
    const bad = (bucket: unknown): Promise<void> => limiter.take(bucket as string);
    await expect(bad(42)).rejects.toThrow(InvalidRateLimitBucketError);
    await expect(bad(undefined)).rejects.toThrow(/must be a string/);
    await expect(bad('')).rejects.toThrow(/Invalid rate limit bucket "": the limiter name .* is empty/);
    await expect(bad(':acct')).rejects.toThrow(InvalidRateLimitBucketError);
    await expect(bad('partner:')).rejects.toThrow(/"partner:": the key .* is empty/);
    await expect(bad(`partner:${'k'.repeat(256)}`)).rejects.toThrow(/at most 255 characters \(got 256\)/);
    await expect(limiter.tryTake('partner:\ud800')).rejects.toThrow(/lone surrogate/);
    await expect(limiter.tryTake('partner:a\u0000b')).rejects.toThrow(InvalidRateLimitBucketError);
    await expect(bad('stripe')).rejects.toThrow(UnknownRateLimiterError);
    await expect(limiter.tryTake('stripe:acct_42')).rejects.toThrow(/Unknown rate limiter "stripe".*"partner"/);
    await expect(limiter.take('partner', { timeoutMs: -1 })).rejects.toThrow(InvalidRateLimitTakeError);
    await expect(limiter.take('partner', { timeoutMs: Number.NaN })).rejects.toThrow(/"timeoutMs"/);
    await expect(limiter.take('partner', { signal: {} as AbortSignal })).rejects.toThrow(/"signal"/);
    // Nothing was taken by any of them; a 255-character key is a key.
    expect(await startsOf(a!, 'partner')).toEqual([]);
    expect(await limiter.tryTake(`partner:${'k'.repeat(255)}`)).toBe(true);
  });
});

describe.each(serverDatabases())('WorkerRateLimiter behind a held lock ($name)', (database) => {
  let t: TestApp;

  afterEach(async () => {
    await t.close();
  });

  // SQLite needs no such test: its lock wait comes before the transaction's first statement (BEGIN IMMEDIATE).
  it('stamps a take that waited for the limiter lock when it was granted, not when it began to wait', async () => {
    t = await createTestApp({ rateLimits: { api: { limit: 1, intervalSeconds: 1 } } }, {}, database);
    const limiter = limiterOf(t);
    // The limiter's lock row, as its first take leaves it (the budget itself is untouched).
    await t.dataSource.query(
      `INSERT INTO nestjs_workers_rate_limits (name) VALUES (${database.type === 'postgres' ? '$1' : '?'})`,
      ['api'],
    );
    // Another take (or a limited claim naming 'api') holds the limiter's lock row for 400 ms.
    const holder = t.dataSource.createQueryRunner();
    await holder.connect();
    await holder.startTransaction('READ COMMITTED');
    await holder.query('SELECT name FROM nestjs_workers_rate_limits WHERE name = ' + "'api' FOR UPDATE");
    const waiting = limiter.take('api');
    await new Promise((resolve) => setTimeout(resolve, 400));
    await holder.commitTransaction();
    await holder.release();
    await waiting;
    const grantedAt = performance.now();
    // 1 start per second: the next grant comes a second after this one was granted, wait or no wait.
    await limiter.take('api');
    expect(performance.now() - grantedAt).toBeGreaterThanOrEqual(950);
  });
});
