/**
 * Flow control's storage on every database: the rate limiters' takes (RateLimitStore.tryTake) and
 * the limited claim (TypeOrmWorkerRepository.claimWorkers with `flow`): global and per-key
 * concurrency, rate limits, fairness between keys, dead slots, pause, and claims from several
 * connections at once that never exceed a limit.
 */
import type { ClaimRateLimit } from '../lib/interfaces/flow-control.interface.js';
import { RateLimitStore } from '../lib/storage/rate-limit-store.js';
import { testDatabases } from './support/databases.js';
import { createPeerApp, createTestApp, execute, type TestApp } from './support/test-app.js';

/** The database's now, epoch ms, read through a take-free statement. */
async function databaseNow(t: TestApp): Promise<number> {
  const type = t.dataSource.options.type;
  const sql =
    type === 'postgres'
      ? 'SELECT floor(extract(epoch from clock_timestamp()) * 1000)::bigint AS now'
      : type === 'better-sqlite3'
        ? "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS now"
        : "SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000 AS now";
  const [row] = (await t.dataSource.query(sql)) as { now: unknown }[];
  return Number(row!.now);
}

async function startTimes(t: TestApp, name: string, bucketKey: string): Promise<number[]> {
  const rows = (await execute(
    t.dataSource,
    'SELECT started_at FROM nestjs_workers_rate_starts WHERE name = ? AND bucket_key = ? ORDER BY started_at',
    [name, bucketKey],
  )) as { started_at: unknown }[];
  return rows.map((row) => Number(row.started_at));
}

for (const database of testDatabases()) {
  describe(`Flow-control storage (${database.name})`, () => {
    let t: TestApp;

    beforeEach(async () => {
      t = await createTestApp({}, {}, database);
    });

    afterEach(async () => {
      await t.close();
    });

    describe('RateLimitStore.tryTake', () => {
      const partner: ClaimRateLimit = { name: 'partner', limit: 3, intervalMs: 60_000 };

      it('grants up to the limit in the window, then tells when the oldest start leaves it', async () => {
        const store = new RateLimitStore(t.dataSource);
        const before = await databaseNow(t);
        const results = [];
        for (let take = 0; take < 5; take++) results.push(await store.tryTake(partner, '', 50));
        expect(results.slice(0, 3)).toEqual([{ granted: true }, { granted: true }, { granted: true }]);
        const [oldest] = await startTimes(t, 'partner', '');
        expect(oldest).toBeGreaterThanOrEqual(before);
        expect(results[3]).toEqual({ granted: false, nextStartAt: oldest! + 60_000 + 50 });
        expect(results[4]).toEqual(results[3]);
        expect(await startTimes(t, 'partner', '')).toHaveLength(3);
      });

      it('keeps the budget of each bucket key and of each limiter apart', async () => {
        const store = new RateLimitStore(t.dataSource);
        const one: ClaimRateLimit = { ...partner, limit: 1 };
        expect(await store.tryTake(one, 'acct_1', 0)).toEqual({ granted: true });
        expect(await store.tryTake(one, 'acct_1', 0)).toMatchObject({ granted: false });
        expect(await store.tryTake(one, 'acct_2', 0)).toEqual({ granted: true });
        expect(await store.tryTake(one, '', 0)).toEqual({ granted: true });
        expect(await store.tryTake({ ...one, name: 'other' }, 'acct_1', 0)).toEqual({ granted: true });
      });

      it('frees budget once a start has left the window (interval + grace)', async () => {
        const store = new RateLimitStore(t.dataSource);
        const short: ClaimRateLimit = { name: 'short', limit: 1, intervalMs: 150 };
        expect(await store.tryTake(short, '', 50)).toEqual({ granted: true });
        const refused = await store.tryTake(short, '', 50);
        expect(refused.granted).toBe(false);
        const nextStartAt = (refused as { nextStartAt: number }).nextStartAt;
        while ((await databaseNow(t)) <= nextStartAt) await new Promise((resolve) => setTimeout(resolve, 20));
        expect(await store.tryTake(short, '', 50)).toEqual({ granted: true });
      });

      it('never grants more than the limit to takes from several connections at once', async () => {
        const peers = await Promise.all([1, 2, 3].map(() => createPeerApp(t, {}, database)));
        try {
          const stores = [t, ...peers].map((app) => new RateLimitStore(app.dataSource));
          const limit: ClaimRateLimit = { name: 'shared', limit: 7, intervalMs: 60_000 };
          const results = await Promise.all(
            Array.from({ length: 40 }, (_, index) => stores[index % stores.length]!.tryTake(limit, '', 0)),
          );
          expect(results.filter((result) => result.granted)).toHaveLength(7);
          expect(await startTimes(t, 'shared', '')).toHaveLength(7);
        } finally {
          for (const peer of peers) await peer.close();
        }
      });
    });
  });
}
