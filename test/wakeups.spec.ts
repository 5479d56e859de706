/**
 * LISTEN/NOTIFY wake-ups on PostgreSQL: a committed dispatch wakes the pollers at once (polling stays
 * the fallback), a rolled-back one does not, a bulk insert wakes a queue once, and a broken LISTEN
 * connection is replaced.
 */
import { BaseEvent, QueueEvent, type WorkerModuleOptions } from '../lib/index.js';
import { serverDatabases } from './support/databases.js';
import { createTestApp, sleep, type TestApp, waitFor } from './support/test-app.js';

const started: { n: number; at: number }[] = [];

@QueueEvent('wakeups')
class WakeEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    started.push({ n: this.getPayload().n, at: Date.now() });
  }
}

const postgres = serverDatabases().filter((database) => database.type === 'postgres');

/** Polls once a minute: anything that runs sooner was woken. */
const SLOW_POLLING: WorkerModuleOptions = {
  events: [WakeEvent],
  autoStart: true,
  queues: { wakeups: { pollIntervalMs: 60_000, concurrency: 4, batchSize: 100 } },
};

describe.each(postgres)('wake-ups through LISTEN/NOTIFY ($name)', (database) => {
  let t: TestApp | undefined;

  beforeEach(() => {
    started.length = 0;
  });

  afterEach(async () => {
    await t?.close();
    t = undefined;
  });

  it('runs a dispatch at once instead of at the next poll, and a bulk dispatch without a poll per row', async () => {
    t = await createTestApp(SLOW_POLLING, {}, database);
    await sleep(200); // the first poll at bootstrap found nothing
    const dispatchedAt = Date.now();
    await t.events.dispatch(new WakeEvent({ n: 1 }));
    await waitFor(() => started.length === 1, 2000);
    expect(started[0]!.at - dispatchedAt).toBeLessThan(500);
    await t.events.dispatchMany(Array.from({ length: 300 }, (_, n) => new WakeEvent({ n })));
    await waitFor(() => started.length === 301, 5000);
  });

  it('is not woken by a rolled-back dispatch, and polls only at its interval with listen: false', async () => {
    t = await createTestApp(SLOW_POLLING, {}, database);
    await sleep(200);
    await t.dataSource
      .transaction(async (manager) => {
        await t!.events.dispatch(new WakeEvent({ n: 1 }), { manager });
        throw new Error('roll back');
      })
      .catch(() => undefined);
    await sleep(500);
    expect(started).toEqual([]);
    await t.close();
    t = await createTestApp({ ...SLOW_POLLING, listen: false }, {}, database);
    await sleep(200);
    await t.events.dispatch(new WakeEvent({ n: 2 }));
    await sleep(700);
    expect(started).toEqual([]);
  });

  it('replaces a LISTEN connection that breaks and is woken again', async () => {
    t = await createTestApp(SLOW_POLLING, {}, database);
    await sleep(200);
    const killed = (await t.dataSource.query(
      // Only this test's database: another test run on the same server has listeners of its own.
      "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE query = 'LISTEN nestjs_workers' " +
        'AND datname = current_database() AND pid <> pg_backend_pid()',
    )) as { killed: boolean }[];
    expect(killed.filter((row) => row.killed)).toHaveLength(1);
    // Reconnected after 250 ms, then every queue is polled once (notifications may have been missed).
    await waitFor(
      async () =>
        (
          (await t!.dataSource.query(
            "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'LISTEN nestjs_workers'",
          )) as { n: number }[]
        )[0]!.n === 1,
      3000,
    );
    const dispatchedAt = Date.now();
    await t.events.dispatch(new WakeEvent({ n: 3 }));
    await waitFor(() => started.length === 1, 2000);
    expect(started[0]!.at - dispatchedAt).toBeLessThan(500);
  });
});
