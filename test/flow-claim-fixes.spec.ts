/**
 * Fixes of the limited claim found in review (issue #17): one key's backlog under a key concurrency
 * limit set per event class never starves the other keys, and a key rate limiter with more spent keys
 * than a statement may bind still claims; and the retention pruner deletes expired throttle windows.
 */
import { RetentionPruner, TypeOrmWorkerRepository } from '../lib/index.js';
import type { ClaimFlowLimits } from '../lib/interfaces/flow-control.interface.js';
import type { IWorkerModel } from '../lib/interfaces/worker-model.interface.js';
import { testDatabases } from './support/databases.js';
import { claimFlow as claim, insertFlowRows as insertRows } from './support/flow-claims.js';
import { createTestApp, execute, type TestApp } from './support/test-app.js';

/** The [concurrency key, event name] of each claimed row, in claim order (a claim returns no key). */
async function claimedOf(t: TestApp, models: IWorkerModel[]): Promise<[string | null, string][]> {
  const ids = models.map((model) => String(model.getWorkerData()!.id));
  if (ids.length === 0) return [];
  const rows = (await execute(
    t.dataSource,
    `SELECT id, concurrency_key, event_name FROM nestjs_workers WHERE id IN (${ids.map(() => '?').join(', ')})`,
    ids,
  )) as { id: unknown; concurrency_key: string | null; event_name: string }[];
  const byId = new Map(rows.map((row) => [String(row.id), row]));
  return ids.map((id) => [byId.get(id)!.concurrency_key, byId.get(id)!.event_name]);
}

async function keysOf(t: TestApp, models: IWorkerModel[]): Promise<(string | null)[]> {
  return (await claimedOf(t, models)).map(([key]) => key);
}

for (const database of testDatabases()) {
  describe(`Flow-control claim fixes (${database.name})`, () => {
    let t: TestApp;

    beforeEach(async () => {
      t = await createTestApp({}, {}, database);
    });

    afterEach(async () => {
      await t.close();
    });

    it('an event-level keyConcurrency backlog of one key does not starve the other keys', async () => {
      const repository = new TypeOrmWorkerRepository(t.dataSource);
      // @QueueEvent('flow', { keyConcurrency: 1 }) on one event class, no queue-level keyConcurrency.
      const flow: ClaimFlowLimits = { keyConcurrencyByEvent: { FlowEvent: 1 }, startGraceMs: 50 };
      const now = await repository.currentTime();
      await insertRows(t, [...Array.from({ length: 300 }, () => ({ key: 'busy' })), { key: 'other' }], now);
      expect(await keysOf(t, (await claim(repository, flow, 1)).models)).toEqual(['busy']);
      // 'busy' runs 1 (its limit); 'other' has a due row and nothing running: it must be claimed.
      expect(await keysOf(t, (await claim(repository, flow, 1)).models)).toEqual(['other']);
    });

    it("a per-event keyConcurrency lower than the queue's: the full pair is left out, other keys and events run", async () => {
      const repository = new TypeOrmWorkerRepository(t.dataSource);
      const flow: ClaimFlowLimits = { keyConcurrency: 3, keyConcurrencyByEvent: { FlowEvent: 1 }, startGraceMs: 50 };
      const now = await repository.currentTime();
      await insertRows(
        t,
        [
          ...Array.from({ length: 450 }, () => ({ key: 'busy' })),
          { key: 'busy', event: 'OtherEvent' },
          { key: 'other' },
        ],
        now,
      );
      expect(await keysOf(t, (await claim(repository, flow, 1)).models)).toEqual(['busy']);
      // FlowEvent of 'busy' is full (1 of 1); its OtherEvent row (1 of 3) and 'other' may start.
      const { models } = await claim(repository, flow, 5);
      expect(await claimedOf(t, models)).toEqual([
        ['busy', 'OtherEvent'],
        ['other', 'FlowEvent'],
      ]);
    });

    it('a key rate limit with many spent keys still claims (bind parameter limit), and says when a spent key frees', async () => {
      const repository = new TypeOrmWorkerRepository(t.dataSource);
      const flow: ClaimFlowLimits = {
        keyRate: { name: 'queue-key:flow', limit: 1, intervalMs: 3_600_000 },
        startGraceMs: 50,
      };
      const now = await repository.currentTime();
      // 70,000 accounts each started once this hour (1/hour per account): all spent.
      const spent = 70_000;
      for (let start = 0; start < spent; start += 1000) {
        const count = Math.min(1000, spent - start);
        await execute(
          t.dataSource,
          'INSERT INTO nestjs_workers_rate_starts (name, bucket_key, started_at) VALUES ' +
            Array.from({ length: count }, () => '(?, ?, ?)').join(', '),
          Array.from({ length: count }, (_, i) => ['queue-key:flow', `acct_${start + i}`, now - 1000 + (i % 7)]).flat(),
        );
      }
      await insertRows(t, [{ key: 'acct_5' }, { key: 'fresh-account' }], now);
      const { models, report } = await claim(repository, flow, 2);
      expect(await keysOf(t, models)).toEqual(['fresh-account']);
      // acct_5 waits: its one start (now - 1000 + 5) leaves the window after the interval and the grace.
      expect(report?.nextStartAt).toBe(now - 1000 + 5 + 3_600_000 + 50);
    }, 120_000);

    it('the retention pruner deletes expired throttle windows and keeps the open ones', async () => {
      const pruner = t.app.get(RetentionPruner);
      const now = Date.now();
      await execute(
        t.dataSource,
        'INSERT INTO nestjs_workers_throttles (queue_name, unique_key, job_id, until_at) VALUES ' +
          '(?, ?, 1, ?), (?, ?, 2, ?), (?, ?, 3, ?)',
        ['q', 'expired-long-ago', now - 3_600_000, 'q', 'expired', now - 5000, 'q', 'open', now + 3_600_000],
      );
      const report = await pruner.pruneNow();
      const left = (await execute(
        t.dataSource,
        'SELECT unique_key FROM nestjs_workers_throttles ORDER BY unique_key',
        [],
      )) as { unique_key: string }[];
      expect(left.map((row) => row.unique_key)).toEqual(['open']);
      expect(report.throttles).toBe(2);
    });
  });
}
