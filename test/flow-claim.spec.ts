/**
 * Flow control's storage on every database: the rate limiters' takes (RateLimitStore.tryTake) and
 * the limited claim (TypeOrmWorkerRepository.claimWorkers with `flow`): global and per-key
 * concurrency, rate limits, fairness between keys, dead slots, pause, and claims from several
 * connections at once that never exceed a limit.
 */
import { TypeOrmWorkerRepository } from '../lib/index.js';
import type { ClaimFlowLimits, ClaimRateLimit } from '../lib/interfaces/flow-control.interface.js';
import type { IWorkerModel } from '../lib/interfaces/worker-model.interface.js';
import { RateLimitStore } from '../lib/storage/rate-limit-store.js';
import { testDatabases } from './support/databases.js';
import {
  claimFlow as claim,
  databaseNow,
  FLOW_QUEUE,
  insertFlowRows as insertRows,
  type RowSpec,
} from './support/flow-claims.js';
import { createPeerApp, createTestApp, execute, sleep, type TestApp } from './support/test-app.js';

const QUEUE = FLOW_QUEUE;

function keyed(key: string | null, count: number, event?: string): RowSpec[] {
  return Array.from({ length: count }, () => ({ key, event }));
}

function keysOf(t: TestApp, models: IWorkerModel[]): Promise<(string | null)[]> {
  return keysOfIds(
    t,
    models.map((model) => String(model.getWorkerData()!.id)),
  );
}

async function keysOfIds(t: TestApp, ids: string[]): Promise<(string | null)[]> {
  if (ids.length === 0) return [];
  const rows = (await execute(
    t.dataSource,
    `SELECT concurrency_key FROM nestjs_workers WHERE id IN (${ids.map(() => '?').join(', ')}) ORDER BY id`,
    ids,
  )) as { concurrency_key: string | null }[];
  return rows.map((row) => row.concurrency_key);
}

async function pause(t: TestApp, paused: boolean): Promise<void> {
  await execute(t.dataSource, 'DELETE FROM nestjs_workers_queues WHERE queue_name = ?', [QUEUE]);
  await execute(t.dataSource, 'INSERT INTO nestjs_workers_queues (queue_name, paused, updated_at) VALUES (?, ?, 0)', [
    QUEUE,
    paused ? 1 : 0,
  ]);
}

const GRACE = 50;

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

    describe('the plain claim', () => {
      it('claims nothing from a paused queue, and claims again once it is resumed', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, keyed(null, 3));
        await pause(t, true);
        const request = { queueName: QUEUE, limit: 10, workerId: 'w', leaseMs: 60_000, expectDue: true };
        expect(await repository.claimWorkers({ ...request, dueBy: new Date(await repository.currentTime()) })).toEqual(
          [],
        );
        // Another queue's pause does not stop this one.
        await execute(t.dataSource, 'UPDATE nestjs_workers_queues SET queue_name = ?', ['another']);
        const models = await repository.claimWorkers({ ...request, dueBy: new Date(await repository.currentTime()) });
        expect(models).toHaveLength(3);
      });
    });

    describe('the limited claim', () => {
      it('counts leased rows against globalConcurrency across claims of different workers', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, keyed(null, 10));
        const flow: ClaimFlowLimits = { globalConcurrency: 3, startGraceMs: GRACE };
        expect((await claim(repository, flow, 2, { workerId: 'a' })).models).toHaveLength(2);
        expect((await claim(repository, flow, 5, { workerId: 'b' })).models).toHaveLength(1);
        // Held back by concurrency, not by a rate: nothing to wake up for (the slots free on completion).
        expect(await claim(repository, flow, 5, { workerId: 'c' })).toEqual({ models: [], report: {} });
      });

      it('frees the slot of a completed or retried row, and of an expired lease', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, keyed(null, 10));
        const flow: ClaimFlowLimits = { globalConcurrency: 3, startGraceMs: GRACE };
        const first = (await claim(repository, flow, 3)).models;
        expect(first).toHaveLength(3);
        await repository.completeWorker(first[0]!);
        await repository.retryWorker(first[1]!, {
          error: 'again',
          availableAt: new Date((await repository.currentTime()) + 3_600_000),
          retries: 3,
        });
        const second = (await claim(repository, flow, 5)).models;
        expect(second).toHaveLength(2);
        expect((await claim(repository, flow, 5)).models).toHaveLength(0);

        // A short lease that ends: its slot is dead at the next claim.
        await repository.completeWorker(first[2]!);
        const short = (await claim(repository, flow, 1, { leaseMs: 200 })).models;
        expect(short).toHaveLength(1);
        expect((await claim(repository, flow, 5)).models).toHaveLength(0);
        await sleep(300);
        // The expired row itself is claimable again, and its slot no longer counts.
        expect((await claim(repository, flow, 5)).models).toHaveLength(1);
        const slots = (await execute(t.dataSource, 'SELECT job_id FROM nestjs_workers_slots')) as unknown[];
        expect(slots).toHaveLength(3);
      });

      it('limits the running rows of each key, with a limit of its own per event name', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, [
          ...keyed('user-1', 4, 'Mail'),
          ...keyed('user-2', 4, 'Mail'),
          ...keyed('user-1', 4, 'Export'),
          ...keyed(null, 2, 'Mail'),
        ]);
        const flow: ClaimFlowLimits = { keyConcurrency: 2, keyConcurrencyByEvent: { Export: 3 }, startGraceMs: GRACE };
        const { models } = await claim(repository, flow, 50);
        const keys = await keysOf(t, models);
        // user-1: two Mail rows (limit 2), then one Export row (its own limit 3 counts the key's 2 running).
        expect(keys.filter((key) => key === 'user-1')).toHaveLength(3);
        expect(keys.filter((key) => key === 'user-2')).toHaveLength(2);
        expect(keys.filter((key) => key === null)).toHaveLength(2);
        const exports = models.filter((model) => model.getWorkerData()!.eventName === 'Export');
        expect(exports).toHaveLength(1);
        expect((await claim(repository, flow, 50)).models).toHaveLength(0);
      });

      it('lets keys take turns: a busy key with a long backlog does not starve the others', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, [...keyed('busy', 200), ...['a', 'b', 'c', 'd', 'e'].flatMap((key) => keyed(key, 5))]);
        const { models } = await claim(repository, { keyConcurrency: 1, startGraceMs: GRACE }, 6);
        expect((await keysOf(t, models)).sort()).toEqual(['a', 'b', 'busy', 'c', 'd', 'e']);
      });

      it('gives a turn to the keys behind the backlog of a busy key under its limit', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        const small = ['a', 'b', 'c', 'd', 'e'];
        await insertRows(t, [...keyed('busy', 300), ...small.flatMap((key) => keyed(key, 3))]);
        // 'busy' fills every window read in claim order, and could take all 6 (it runs none of its 100).
        const { models } = await claim(repository, { keyConcurrency: 100, startGraceMs: GRACE }, 6);
        expect((await keysOf(t, models)).sort()).toEqual(['a', 'b', 'busy', 'c', 'd', 'e']);
      });

      it('gives a turn to the keys behind a busy key with key rate budget left (keyRate only)', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, [...keyed('busy', 300), ...keyed('x', 2), ...keyed('y', 2)]);
        const keyRate: ClaimRateLimit = { name: 'partner', limit: 100, intervalMs: 60_000 };
        const { models } = await claim(repository, { keyRate, startGraceMs: GRACE }, 4);
        expect((await keysOf(t, models)).sort()).toEqual(['busy', 'busy', 'x', 'y']);
      });

      it('counts the rows without a key as one more key behind a busy one', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, [...keyed('busy', 300), ...keyed(null, 2), ...keyed('late', 2)]);
        const { models } = await claim(repository, { keyConcurrency: 100, startGraceMs: GRACE }, 5);
        // Rank 1 of each (busy, no key, late), then rank 2 in claim order.
        const keys = await keysOf(t, models);
        expect(keys.filter((key) => key === 'busy')).toHaveLength(2);
        expect(keys.filter((key) => key === null)).toHaveLength(2);
        expect(keys.filter((key) => key === 'late')).toHaveLength(1);
      });

      it('takes one row of each key per turn when keys may run several', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, [...keyed('busy', 20), ...keyed('quiet', 3)]);
        const { models } = await claim(repository, { keyConcurrency: 10, startGraceMs: GRACE }, 6);
        const keys = await keysOf(t, models);
        expect(keys.filter((key) => key === 'quiet')).toHaveLength(3);
        expect(keys.filter((key) => key === 'busy')).toHaveLength(3);
      });

      it('never starts more than the rate limit in its window, and says when budget frees again', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, keyed(null, 10));
        const rate: ClaimRateLimit = { name: `queue:${QUEUE}`, limit: 4, intervalMs: 60_000 };
        const flow: ClaimFlowLimits = { rate, startGraceMs: GRACE };
        const first = await claim(repository, flow, 3);
        expect(first.models).toHaveLength(3);
        expect(first.report?.nextStartAt).toBeUndefined();
        const second = await claim(repository, flow, 3);
        expect(second.models).toHaveLength(1);
        const [oldest] = await startTimes(t, rate.name, '');
        expect(second.report).toMatchObject({ nextStartAt: oldest! + 60_000 + GRACE });
        const third = await claim(repository, flow, 3);
        expect(third.models).toHaveLength(0);
        expect(third.report).toEqual({ nextStartAt: oldest! + 60_000 + GRACE });
        expect(await startTimes(t, rate.name, '')).toHaveLength(4);
      });

      it('frees rate budget once the starts leave the window', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, keyed(null, 10));
        const flow: ClaimFlowLimits = { rate: { name: 'fast', limit: 2, intervalMs: 200 }, startGraceMs: GRACE };
        expect((await claim(repository, flow, 5)).models).toHaveLength(2);
        const { models, report } = await claim(repository, flow, 5);
        expect(models).toHaveLength(0);
        while ((await databaseNow(t)) <= report!.nextStartAt!) await sleep(20);
        expect((await claim(repository, flow, 5)).models).toHaveLength(2);
      });

      it('limits the starts of each key (keyRate), reporting when a held key frees', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, [...keyed('acct_1', 5), ...keyed('acct_2', 5)]);
        const keyRate: ClaimRateLimit = { name: 'stripe', limit: 2, intervalMs: 60_000 };
        const flow: ClaimFlowLimits = { keyRate, startGraceMs: GRACE };
        const first = await claim(repository, flow, 10);
        expect((await keysOf(t, first.models)).sort()).toEqual(['acct_1', 'acct_1', 'acct_2', 'acct_2']);
        const [oldest] = await startTimes(t, 'stripe', 'acct_1');
        expect(first.report).toMatchObject({ nextStartAt: oldest! + 60_000 + GRACE });
        expect((await claim(repository, flow, 10)).models).toHaveLength(0);
      });

      it("shares one budget between a queue's claim and tryTake of the same limiter", async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        const store = new RateLimitStore(t.dataSource);
        await insertRows(t, [...keyed('acct_1', 5), ...keyed(null, 5)]);
        const stripe: ClaimRateLimit = { name: 'stripe', limit: 3, intervalMs: 60_000 };
        expect(await store.tryTake(stripe, '', GRACE)).toEqual({ granted: true });
        expect(await store.tryTake(stripe, 'acct_1', GRACE)).toEqual({ granted: true });
        expect(await store.tryTake(stripe, 'acct_1', GRACE)).toEqual({ granted: true });
        const flow: ClaimFlowLimits = { rate: stripe, keyRate: stripe, startGraceMs: GRACE };
        const { models } = await claim(repository, flow, 10);
        // The whole budget has 2 starts left; acct_1's has 1.
        expect((await keysOf(t, models)).sort((a, b) => String(a).localeCompare(String(b)))).toEqual(['acct_1', null]);
        expect(await store.tryTake(stripe, '', GRACE)).toMatchObject({ granted: false });
        expect(await store.tryTake(stripe, 'acct_1', GRACE)).toMatchObject({ granted: false });
      });

      it('claims nothing from a paused queue and says so', async () => {
        const repository = new TypeOrmWorkerRepository(t.dataSource);
        await insertRows(t, keyed(null, 3));
        await pause(t, true);
        const flow: ClaimFlowLimits = { globalConcurrency: 5, startGraceMs: GRACE };
        expect(await claim(repository, flow, 5)).toEqual({ models: [], report: { paused: true } });
        await pause(t, false);
        const resumed = await claim(repository, flow, 5);
        expect(resumed.models).toHaveLength(3);
        expect(resumed.report).toEqual({});
      });

      it('never exceeds the limits under concurrent claims from several connections', async () => {
        const peers = await Promise.all([1, 2, 3].map(() => createPeerApp(t, {}, database)));
        try {
          const repositories = [t, ...peers].map((app) => new TypeOrmWorkerRepository(app.dataSource));
          await insertRows(t, [...['a', 'b', 'c', 'd'].flatMap((key) => keyed(key, 10)), ...keyed(null, 20)]);
          const flow: ClaimFlowLimits = {
            globalConcurrency: 9,
            keyConcurrency: 2,
            rate: { name: 'burst', limit: 8, intervalMs: 60_000 },
            startGraceMs: GRACE,
          };
          const results = await Promise.all(
            Array.from({ length: 24 }, (_, index) =>
              claim(repositories[index % repositories.length]!, flow, 2, { workerId: `w${index}` }),
            ),
          );
          const ids = results.flatMap((result) => result.models.map((model) => String(model.getWorkerData()!.id)));
          expect(new Set(ids).size).toBe(ids.length);
          // The rate (8) binds before the global limit (9).
          expect(ids).toHaveLength(8);
          const keys = await keysOfIds(t, ids);
          for (const key of ['a', 'b', 'c', 'd']) {
            expect(keys.filter((k) => k === key).length).toBeLessThanOrEqual(2);
          }
          expect(await startTimes(t, 'burst', '')).toHaveLength(8);
        } finally {
          for (const peer of peers) await peer.close();
        }
      });

      it('never exceeds globalConcurrency under concurrent claims from several connections', async () => {
        const peers = await Promise.all([1, 2, 3].map(() => createPeerApp(t, {}, database)));
        try {
          const repositories = [t, ...peers].map((app) => new TypeOrmWorkerRepository(app.dataSource));
          await insertRows(t, [...['a', 'b', 'c'].flatMap((key) => keyed(key, 10)), ...keyed(null, 10)]);
          const flow: ClaimFlowLimits = { globalConcurrency: 7, keyConcurrency: 1, startGraceMs: GRACE };
          const results = await Promise.all(
            Array.from({ length: 24 }, (_, index) =>
              claim(repositories[index % repositories.length]!, flow, 3, { workerId: `w${index}` }),
            ),
          );
          const ids = results.flatMap((result) => result.models.map((model) => String(model.getWorkerData()!.id)));
          expect(ids).toHaveLength(7);
          const keys = await keysOfIds(t, ids);
          for (const key of ['a', 'b', 'c']) expect(keys.filter((k) => k === key)).toHaveLength(1);
        } finally {
          for (const peer of peers) await peer.close();
        }
      });
      it('keeps global and per-key limits while claims and completions interleave on several connections', async () => {
        const peers = await Promise.all([1, 2, 3].map(() => createPeerApp(t, {}, database)));
        try {
          const repositories = [t, ...peers].map((app) => new TypeOrmWorkerRepository(app.dataSource));
          await insertRows(t, [...['a', 'b', 'c', 'd'].flatMap((key) => keyed(key, 15)), ...keyed(null, 20)]);
          const keyOf = new Map(
            (
              (await execute(t.dataSource, 'SELECT id, concurrency_key FROM nestjs_workers')) as Record<
                string,
                unknown
              >[]
            ).map((row) => [String(row.id), row.concurrency_key as string | null]),
          );
          const flow: ClaimFlowLimits = { globalConcurrency: 6, keyConcurrency: 2, startGraceMs: GRACE };
          // What runs as the claims returned it; a row leaves before its completion is sent, so this
          // never counts more than the database does.
          const running = new Map<string, string | null>();
          let maxRunning = 0;
          let maxPerKey = 0;
          let completed = 0;
          const deadline = Date.now() + 20_000;
          await Promise.all(
            repositories.map(async (repository, worker) => {
              while (completed < 80 && Date.now() < deadline) {
                const { models } = await claim(repository, flow, 3, { workerId: `w${worker}` });
                for (const model of models)
                  running.set(String(model.getWorkerData()!.id), keyOf.get(String(model.getWorkerData()!.id)) ?? null);
                maxRunning = Math.max(maxRunning, running.size);
                const perKey = new Map<string, number>();
                for (const key of running.values()) if (key !== null) perKey.set(key, (perKey.get(key) ?? 0) + 1);
                maxPerKey = Math.max(maxPerKey, ...perKey.values(), 0);
                await sleep(5 + Math.random() * 15);
                for (const model of models) {
                  running.delete(String(model.getWorkerData()!.id));
                  await repository.completeWorker(model);
                  completed++;
                }
                if (models.length === 0) await sleep(5);
              }
            }),
          );
          expect(completed).toBe(80);
          expect(maxRunning).toBeLessThanOrEqual(6);
          expect(maxPerKey).toBeLessThanOrEqual(2);
          expect(maxRunning).toBeGreaterThanOrEqual(4);
        } finally {
          for (const peer of peers) await peer.close();
        }
      });
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
