/**
 * dispatchMany() and batch claims on every database: multi-row INSERTs (all or none, ids in order,
 * inside the caller's transaction) and batchSize rows per claim, their completions deleted together.
 */
import { jest } from '@jest/globals';
import {
  BaseEvent,
  InvalidWorkerOptionsError,
  QueueEvent,
  TypeOrmWorkerRepository,
  UnserializablePayloadError,
  WorkerError,
  WorkerLifecycle,
} from '../lib/index.js';
import { RecordingEventService } from '../lib/testing/index.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, pendingRows, runOncePass, type TestApp } from './support/test-app.js';

const seen: { n: number; leaseToken: string }[] = [];
let readLease: (n: number) => Promise<string> = async () => '';

@QueueEvent('bulk')
class BulkEvent extends BaseEvent<{ n: number; note?: unknown }> {
  async execute(): Promise<void> {
    const { n } = this.getPayload();
    seen.push({ n, leaseToken: await readLease(n) });
  }
}

@QueueEvent('bulk-other')
class OtherBulkEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

@QueueEvent('bulk-plain', { retries: 3 })
class PlainBulkEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

@QueueEvent('bulk-plain', { retries: 7, priority: -5 })
class UrgentBulkEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

class InlineEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

describe.each(testDatabases())('bulk dispatch and batch claims ($name)', (database) => {
  let t: TestApp;

  beforeEach(async () => {
    seen.length = 0;
    t = await createTestApp({ events: [BulkEvent, OtherBulkEvent, PlainBulkEvent, UrgentBulkEvent] }, {}, database);
  });

  afterEach(async () => {
    readLease = async () => '';
    await t.close();
  });

  it('stores 7,000 events of two queues in multi-row INSERTs and resolves to their ids in order', async () => {
    const events = Array.from({ length: 7000 }, (_, n) =>
      n % 7 === 0 ? new OtherBulkEvent({ n }) : new BulkEvent({ n }),
    );
    const ids = await t.events.dispatchMany(events);
    expect(ids).toHaveLength(7000);
    const rows = await pendingRows(t.dataSource);
    const byId = new Map(rows.map((row) => [String(row.id), row]));
    ids.forEach((id, n) => {
      const row = byId.get(id)!;
      expect(JSON.parse(String(row.payload))).toEqual({ n });
      expect(row.queue_name).toBe(n % 7 === 0 ? 'bulk-other' : 'bulk');
    });
    expect(await t.workers.runWorker(runOncePass('bulk', { concurrency: 8, batchSize: 500 }))).toMatchObject({
      processed: 6000,
    });
    expect(seen).toHaveLength(6000);
  }, 60_000);

  it('stores events whose columns are all alike, or differ only in retries and priority, as they were dispatched', async () => {
    // On PostgreSQL a column that is the same in every row is bound once; here every column is (no payload).
    const ids = await t.events.dispatchMany([
      new PlainBulkEvent(null),
      new PlainBulkEvent(null),
      new PlainBulkEvent(null),
    ]);
    expect(ids).toHaveLength(3);
    // Two classes of one queue: retries and priority (from their options) differ per row, the rest does not.
    await t.events.dispatchMany([new PlainBulkEvent(null), new UrgentBulkEvent(null), new PlainBulkEvent(null)]);
    const rows = await pendingRows(t.dataSource);
    expect(rows.map((row) => [row.event_name, row.payload, Number(row.retries), Number(row.priority)])).toEqual([
      ...Array.from({ length: 3 }, () => ['PlainBulkEvent', null, 3, 0]),
      ['PlainBulkEvent', null, 3, 0],
      ['UrgentBulkEvent', null, 7, -5],
      ['PlainBulkEvent', null, 3, 0],
    ]);
  });

  it('applies delaySeconds and priority to every event, and announces each one', async () => {
    const announced: unknown[] = [];
    t.app
      .get(WorkerLifecycle)
      .subscribe((event) => void (event.name === 'dispatched' && announced.push(event.attributes.payload)), 'test');
    const before = Date.now();
    await t.events.dispatchMany([new BulkEvent({ n: 1 }), new BulkEvent({ n: 2 })], { delaySeconds: 60, priority: -3 });
    const rows = await pendingRows(t.dataSource);
    expect(rows.map((row) => row.priority)).toEqual([-3, -3]);
    for (const row of rows) expect(Number(row.available_at)).toBeGreaterThanOrEqual(before + 60_000);
    expect(announced).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('stores all or none: one unserializable payload, a key, an event without a queue or a bad option stores nothing', async () => {
    const good = () => Array.from({ length: 3000 }, (_, n) => new BulkEvent({ n }));
    await expect(t.events.dispatchMany([...good(), new BulkEvent({ n: 1, note: new Date() })])).rejects.toThrow(
      UnserializablePayloadError,
    );
    await expect(t.events.dispatchMany(good(), { uniqueKey: 'k' })).rejects.toThrow(InvalidWorkerOptionsError);
    await expect(t.events.dispatchMany([...good(), new InlineEvent(null)])).rejects.toThrow(
      new WorkerError('dispatchMany() takes queued events only: events[3000] (InlineEvent) has no queue'),
    );
    await expect(t.events.dispatchMany(good(), { delaySeconds: -1 })).rejects.toThrow(
      'Invalid nestjs-workers option "delaySeconds"',
    );
    await expect(t.events.dispatchMany('not events' as never)).rejects.toThrow(
      'Invalid nestjs-workers option "events"',
    );
    expect(await pendingRows(t.dataSource)).toEqual([]);
    expect(await t.events.dispatchMany([])).toEqual([]);
  });

  if (database.type !== 'better-sqlite3') {
    it("writes in the caller's transaction: a rollback leaves none of them, a commit all", async () => {
      await expect(
        t.dataSource.transaction(async (manager) => {
          await t.events.dispatchMany([new BulkEvent({ n: 1 }), new BulkEvent({ n: 2 })], { manager });
          throw new Error('roll back');
        }),
      ).rejects.toThrow('roll back');
      expect(await pendingRows(t.dataSource)).toEqual([]);
      const ids = await t.dataSource.transaction((manager) =>
        t.events.dispatchMany([new BulkEvent({ n: 3 }), new BulkEvent({ n: 4 })], { manager }),
      );
      expect((await pendingRows(t.dataSource)).map((row) => String(row.id))).toEqual(ids);
    });
  } else {
    it('refuses { manager } on SQLite as dispatch() does', async () => {
      await expect(
        t.dataSource.transaction((manager) => t.events.dispatchMany([new BulkEvent({ n: 1 })], { manager })),
      ).rejects.toThrow('needs PostgreSQL or MySQL/MariaDB');
    });
  }

  it('claims batchSize rows per round trip (one lease per claim) and deletes their rows together', async () => {
    readLease = async (n) => {
      const rows = await pendingRows(t.dataSource);
      return String(rows.find((row) => JSON.parse(String(row.payload)).n === n)?.lease_token);
    };
    await t.events.dispatchMany(Array.from({ length: 20 }, (_, n) => new BulkEvent({ n })));
    const result = await t.workers.runWorker(runOncePass('bulk', { concurrency: 2, batchSize: 10 }));
    expect(result).toMatchObject({ processed: 20 });
    expect(new Set(seen.map((entry) => entry.leaseToken)).size).toBe(2);
    expect(seen.map((entry) => entry.n).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, n) => n));
    // The first claim took the 10 oldest.
    const firstLease = seen.find((entry) => entry.n === 0)!.leaseToken;
    expect(
      seen
        .filter((entry) => entry.leaseToken === firstLease)
        .map((entry) => entry.n)
        .sort((a, b) => a - b),
    ).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await pendingRows(t.dataSource)).toEqual([]);

    seen.length = 0;
    await t.events.dispatchMany(Array.from({ length: 6 }, (_, n) => new BulkEvent({ n })));
    // Without batchSize a claim takes `concurrency` rows, as before.
    await t.workers.runWorker(runOncePass('bulk', { concurrency: 2 }));
    expect(new Set(seen.map((entry) => entry.leaseToken)).size).toBe(3);
  });

  it('ends the run with a batch short of batchSize: no second claim for rows it already took, no count for the log', async () => {
    await t.events.dispatchMany(Array.from({ length: 3 }, (_, n) => new BulkEvent({ n })));
    const claims = jest.spyOn(TypeOrmWorkerRepository.prototype, 'claimWorkers');
    const counts = jest.spyOn(TypeOrmWorkerRepository.prototype, 'countDueWorkers');
    try {
      expect(await t.workers.runWorker(runOncePass('bulk', { runOnce: false, batchSize: 10 }))).toMatchObject({
        processed: 3,
      });
      // The one claim took all 3: that was everything due, and nothing it ran was retried.
      expect(await Promise.all(claims.mock.results.map((result) => result.value as Promise<unknown[]>))).toEqual([
        [expect.anything(), expect.anything(), expect.anything()],
      ]);
      expect(counts).not.toHaveBeenCalled();
    } finally {
      claims.mockRestore();
      counts.mockRestore();
    }
  });

  it('refuses a batchSize that is not an integer between 1 and 10,000', async () => {
    for (const batchSize of [0, 1.5, 10_001, '5']) {
      await expect(t.workers.runWorker(runOncePass('bulk', { batchSize: batchSize as never }))).rejects.toThrow(
        'Invalid nestjs-workers option "batchSize": must be an integer between 1 and 10000',
      );
    }
  });
});

describe('RecordingEventService.dispatchMany', () => {
  it('records every event after the same checks, storing nothing', async () => {
    const recorder = new RecordingEventService({ events: [BulkEvent] });
    const ids = await recorder.dispatchMany([new BulkEvent({ n: 1 }), new BulkEvent({ n: 2 })]);
    expect(ids).toHaveLength(2);
    recorder.expectDispatched(BulkEvent, { n: 2 }, 1);
    await expect(recorder.dispatchMany([new BulkEvent({ n: 3, note: () => 1 })])).rejects.toThrow(
      UnserializablePayloadError,
    );
    recorder.expectNotDispatched(BulkEvent, { n: 3 });
  });
});
