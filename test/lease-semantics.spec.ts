/**
 * Leases in one process on every database (test/lease-processes.spec.ts does it with processes):
 * expiry decided on the database's clock, a lost lease aborting the event through the heartbeat,
 * shutdown giving never-started rows back at once, and an abandoned row keeping its place.
 */
import { jest } from '@jest/globals';
import { BaseEvent, QueueEvent, TypeOrmWorkerRepository } from '../lib/index.js';
import { databaseClock } from '../lib/storage/database-clock.js';
import { serverDatabases, testDatabases } from './support/databases.js';
import { createTestApp, pendingRows, runOncePass, sleep, type TestApp, waitFor } from './support/test-app.js';

@QueueEvent('lease-order')
class OrderedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

const aborts: { reason: string; afterMs: number }[] = [];
let started = 0;

/** Runs until its signal fires (or 3 s), and records why it stopped. */
@QueueEvent('lease-watch')
class WatchfulEvent extends BaseEvent<null> {
  async execute(signal?: AbortSignal): Promise<void> {
    started++;
    const begun = Date.now();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 3000);
      signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        aborts.push({ reason: (signal.reason as Error).name, afterMs: Date.now() - begun });
        resolve();
      });
    });
  }
}

describe.each(testDatabases())('leases ($name)', (database) => {
  let t: TestApp;

  beforeEach(async () => {
    aborts.length = 0;
    started = 0;
    t = await createTestApp(
      { leaseSeconds: 1, heartbeatSeconds: 0.1, events: [OrderedEvent, WatchfulEvent] },
      {},
      database,
    );
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await t.close();
  });

  const claim = (repository: TypeOrmWorkerRepository, workerId: string, leaseMs: number, limit = 1) =>
    repository.claimWorkers({ queueName: 'lease-order', limit, workerId, leaseMs, dueBy: new Date(Date.now()) });

  it('point 9: a row whose lease expired is claimed again in its original place, ahead of rows due after it', async () => {
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    const first = await t.events.dispatch(new OrderedEvent({ n: 0 }));
    expect((await claim(repository, 'dead', 300)).map((model) => model.getWorkerData()?.id)).toEqual([first]);
    for (let n = 1; n <= 5; n++) await t.events.dispatch(new OrderedEvent({ n }));
    const [leased] = await pendingRows(t.dataSource);
    // The claim left the due time alone and put the lease in its own column.
    expect(String(leased!.id)).toBe(first);
    expect(leased).toMatchObject({ available_at: leased!.created_at, lease_token: expect.any(String) });
    expect(Number(leased!.lease_expires_at)).toBeGreaterThan(Number(leased!.available_at));
    await sleep(400);
    const [rescued] = await claim(repository, 'rescuer', 60_000);
    expect(rescued?.getWorkerData()).toMatchObject({ id: first, attempts: 2 });
    expect((await t.workers.getQueueStatistics(['lease-order']))[0]).toMatchObject({ pending: 6, due: 5, running: 1 });
  });

  it("point 6: a worker whose clock is 60 s ahead takes no live lease: expiry is the database's call", async () => {
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    await t.events.dispatch(new OrderedEvent({ n: 0 }));
    expect(await claim(repository, 'holder', 5_000)).toHaveLength(1);
    const realNow = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 60_000);
    // By this process's clock the 5 s lease ran out 55 s ago; by the database's it holds.
    expect(await claim(new TypeOrmWorkerRepository(t.dataSource), 'ahead', 5_000)).toEqual([]);
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ locked_by: 'holder', attempts: 1 });
    expect(Number(row!.lease_expires_at)).toBeLessThan(realNow() + 6_000);
  });

  it('point 7: the heartbeat aborts an event whose row another worker took, with LeaseLostError, and writes nothing', async () => {
    await t.events.dispatch(new WatchfulEvent(null));
    const run = t.workers.runWorker(runOncePass('lease-watch'));
    await waitFor(() => started === 1, 5_000);
    // Another worker took the row over (as after a pause past the lease).
    await t.dataSource.query("UPDATE nestjs_workers SET lease_token = 'other', locked_by = 'other'");
    const takenAt = Date.now();
    expect(await run).toEqual({ queueName: 'lease-watch', processed: 0, failed: 0, retried: 0, cancelled: 0 });
    expect(aborts).toEqual([{ reason: 'LeaseLostError', afterMs: expect.any(Number) }]);
    expect(Date.now() - takenAt).toBeLessThan(1_000);
    expect(await pendingRows(t.dataSource)).toEqual([
      expect.objectContaining({ lease_token: 'other', locked_by: 'other', attempts: 1, error: null }),
    ]);
  });

  it('point 8: shutdown gives claimed rows that never started back at once, attempt undone, whatever the grace', async () => {
    for (let n = 0; n < 3; n++) await t.events.dispatch(new WatchfulEvent(null));
    const run = t.workers.runWorker(runOncePass('lease-watch', { concurrency: 1, batchSize: 3 }));
    await waitFor(() => started === 1, 5_000);
    expect((await pendingRows(t.dataSource)).filter((row) => row.lease_token !== null)).toHaveLength(3);
    const stoppedAt = Date.now();
    await t.workers.shutdown(0);
    // The running event (3 s) goes on; the two that never started are back, as they were.
    expect(Date.now() - stoppedAt).toBeLessThan(1_000);
    const rows = await pendingRows(t.dataSource);
    expect(rows.filter((row) => row.lease_token === null)).toEqual([
      expect.objectContaining({ attempts: 0, locked_by: null, lease_expires_at: null }),
      expect.objectContaining({ attempts: 0, locked_by: null, lease_expires_at: null }),
    ]);
    expect(rows.filter((row) => row.lease_token !== null)).toEqual([expect.objectContaining({ attempts: 1 })]);
    expect(started).toBe(1);
    await run;
  });
  it.each([
    ['claim', 'claimWorkers'],
    ['queued-items count', 'countDueWorkers'],
  ] as const)(
    'point 8: shutdown with grace 0 while the %s is in flight still gives the claimed rows back unrun',
    async (_step, method) => {
      for (let n = 0; n < 3; n++) await t.events.dispatch(new WatchfulEvent(null));
      // The database answered; the answer reaches the worker 300 ms later (a slow network, a busy pool).
      let inFlight!: () => void;
      const reached = new Promise<void>((resolve) => (inFlight = resolve));
      const original = TypeOrmWorkerRepository.prototype[method] as (...args: unknown[]) => Promise<unknown>;
      jest.spyOn(TypeOrmWorkerRepository.prototype, method).mockImplementation(async function (
        this: TypeOrmWorkerRepository,
        ...args: unknown[]
      ) {
        const answer = await original.apply(this, args);
        inFlight();
        await sleep(300);
        return answer as never;
      });
      // A batch of 1 out of 3 due rows: the pass counts the rest before its first event starts.
      const run = t.workers.runWorker(runOncePass('lease-watch', { concurrency: 1, batchSize: 1 }));
      await reached;
      await t.workers.shutdown(0);
      // Nothing ran, and every row is back as it was: no lease, no attempt counted.
      const rows = await pendingRows(t.dataSource);
      expect(rows).toHaveLength(3);
      for (const row of rows)
        expect(row).toEqual(expect.objectContaining({ attempts: 0, lease_token: null, lease_expires_at: null }));
      await run;
      expect(started).toBe(0);
    },
  );
});

describe.each(serverDatabases())('due times on the database clock ($name)', (database) => {
  afterEach(() => jest.restoreAllMocks());

  it("point 6: a process whose clock is 60 s ahead stamps rows on the server's clock: delaySeconds from its now, runAt as given", async () => {
    const realNow = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 60_000);
    const t = await createTestApp({ events: [OrderedEvent] }, {}, database);
    try {
      const before = realNow();
      await t.events.dispatch(new OrderedEvent({ n: 0 }));
      await t.events.dispatch(new OrderedEvent({ n: 1 }), { delaySeconds: 10 });
      const runAt = new Date(before + 3_600_000);
      await t.events.dispatchMany([new OrderedEvent({ n: 2 })], { runAt });
      const after = realNow();
      const [now, delayed, scheduled] = await pendingRows(t.dataSource);
      expect(Number(now!.created_at)).toBeGreaterThanOrEqual(before - 50);
      expect(Number(now!.created_at)).toBeLessThanOrEqual(after);
      expect(Number(now!.available_at)).toBe(Number(now!.created_at));
      expect(Number(delayed!.available_at) - Number(delayed!.created_at)).toBe(10_000);
      expect(Number(scheduled!.available_at)).toBe(runAt.getTime());
      // The measured offset: the server's clock minus this process's, never ahead, within a round trip.
      const { offsetMs, roundTripMs } = databaseClock(t.dataSource).measurement;
      expect(offsetMs).toBeGreaterThan(-60_000 - roundTripMs - 50);
      expect(offsetMs).toBeLessThanOrEqual(-60_000 + 50);
      // A runOnce pass by this process takes what is due at once, not 60 s later.
      expect(await t.workers.runWorker(runOncePass('lease-order'))).toMatchObject({ processed: 1 });
    } finally {
      await t.close();
    }
  });
});
