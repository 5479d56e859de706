/**
 * The start grace of rate-limited queues under lock contention, on every database: a limited claim
 * that waits for the queue's lock row (another transaction holds it: a locking read on the servers,
 * BEGIN IMMEDIATE of another process on SQLite) grants and stamps its starts once it holds the lock,
 * reports how long it waited, and its worker starts the events instead of giving them back (the wait
 * is not lateness). A queue whose claims keep being given back is logged once, with the fix.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { BaseEvent, QueueEvent, TypeOrmWorkerRepository, type WorkerModuleOptions } from '../lib/index.js';
import type { ClaimFlowLimits, ClaimFlowReport } from '../lib/interfaces/flow-control.interface.js';
import { testDatabases } from './support/databases.js';
import { databaseNow } from './support/flow-claims.js';
import { createPeerApp, createTestApp, execute, RecordingLogger, type TestApp, waitFor } from './support/test-app.js';

const QUEUE = 'grace-rate';
const HOLD_MS = 150;

const started: number[] = [];

@QueueEvent(QUEUE)
class GraceEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    started.push(performance.now());
  }
}

const OPTIONS: WorkerModuleOptions = {
  events: [GraceEvent],
  // One start a minute: a claim given back spends it, and the event would then wait a minute.
  queues: { [QUEUE]: { concurrency: 5, rateLimit: { limit: 1, intervalSeconds: 60 } } },
};

/** A lock held by another transaction: resolves `released` with the database's now just before its commit. */
interface HeldLock {
  released: Promise<number>;
}

/**
 * Holds the queue's lock row for `ms`: on the servers an open transaction of another connection with a
 * locking read of the row; on SQLite another process's BEGIN IMMEDIATE (the write lock every limited
 * claim takes), since this process blocks while it waits for it. Resolves once the lock is held.
 */
async function holdQueueLock(t: TestApp, ms: number): Promise<HeldLock> {
  await execute(t.dataSource, 'DELETE FROM nestjs_workers_queues WHERE queue_name = ?', [QUEUE]);
  await execute(t.dataSource, 'INSERT INTO nestjs_workers_queues (queue_name, paused, updated_at) VALUES (?, 0, 0)', [
    QUEUE,
  ]);
  if (t.dataSource.options.type === 'better-sqlite3') return holdSqliteLock(t.file, ms);
  const runner = t.dataSource.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  await runner.query(`SELECT paused FROM nestjs_workers_queues WHERE queue_name = '${QUEUE}' FOR UPDATE`);
  const released = (async () => {
    try {
      await new Promise((resolve) => setTimeout(resolve, ms));
      const now = await databaseNow(t);
      await runner.commitTransaction();
      return now;
    } finally {
      await runner.release();
    }
  })();
  return { released };
}

async function holdSqliteLock(file: string, ms: number): Promise<HeldLock> {
  const script = `
    const Database = require('better-sqlite3');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => {
      const now = db.prepare("SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS now").get().now;
      db.exec('COMMIT');
      process.stdout.write('released ' + now + '\\n');
      db.close();
    }, Number(process.argv[2]));`;
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['-e', script, file, String(ms)]);
  let output = '';
  const lines = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (data: Buffer) => {
      output += data.toString();
      if (output.includes('locked\n')) resolve();
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`lock holder exited ${code}`))));
  });
  await lines;
  const released = new Promise<number>((resolve, reject) => {
    child.on('exit', () => {
      const match = /released (\d+)/.exec(output);
      if (match) resolve(Number(match[1]));
      else reject(new Error(`lock holder: ${output}`));
    });
  });
  return { released };
}

describe.each(testDatabases())('the start grace under lock contention ($name)', (database) => {
  let t: TestApp;
  let logger: RecordingLogger;

  beforeEach(async () => {
    started.length = 0;
    logger = new RecordingLogger();
    t = await createTestApp({ ...OPTIONS, logger }, {}, database);
  });

  afterEach(async () => {
    await t.close();
  });

  it('stamps the starts with the now after the lock and reports the wait for it', async () => {
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    await t.events.dispatch(new GraceEvent({ n: 1 }));
    await t.events.dispatch(new GraceEvent({ n: 2 }));
    const flow: ClaimFlowLimits = {
      rate: { name: `queue:${QUEUE}`, limit: 5, intervalMs: 60_000 },
      startGraceMs: 50,
    };
    const lock = await holdQueueLock(t, HOLD_MS);
    const request = {
      queueName: QUEUE,
      limit: 5,
      workerId: 'w',
      leaseMs: 60_000,
      dueBy: new Date((await repository.currentTime()) + 1000),
      flow,
      flowReport: undefined as ClaimFlowReport | undefined,
    };
    const sentAt = performance.now();
    const models = await repository.claimWorkers(request);
    const tookMs = performance.now() - sentAt;
    const releasedAt = await lock.released;
    expect(models).toHaveLength(2);
    const report = request.flowReport!;
    process.stdout.write(`db=${database.name} claimMs=${Math.round(tookMs)} waitedMs=${report.waitedMs}\n`);
    // It waited for the lock most of the hold, and never reports more than the claim took.
    expect(report.waitedMs).toBeGreaterThanOrEqual(100);
    expect(report.waitedMs).toBeLessThanOrEqual(tookMs + 1);
    // Granted once the holder had committed, and both starts stamped with that instant.
    expect(report.grantedAt).toBeGreaterThanOrEqual(releasedAt);
    const rows = (await execute(
      t.dataSource,
      'SELECT started_at FROM nestjs_workers_rate_starts WHERE name = ? ORDER BY id',
      [flow.rate!.name],
    )) as { started_at: unknown }[];
    expect(rows.map((row) => Number(row.started_at))).toEqual([report.grantedAt, report.grantedAt]);
  });

  it('starts the events of a claim that waited for the lock longer than the grace, not giving them back', async () => {
    // A first pass with nothing due: the process's registration is not what waits for the lock below.
    await t.workers.runWorker({ queueName: QUEUE, runOnce: true, retries: 3, runAfterSeconds: 0 });
    await t.events.dispatch(new GraceEvent({ n: 1 }));
    const lock = await holdQueueLock(t, HOLD_MS);
    const run = t.workers.runWorker({ queueName: QUEUE, retries: 3, runAfterSeconds: 0 });
    await lock.released;
    // Given back, the event would wait a minute for the budget its claim spent.
    await waitFor(() => started.length === 1, 3000);
    await t.workers.shutdown(1000);
    const result = await run;
    expect(result.processed).toBe(1);
    expect(logger.messages('warn').filter((line) => line.includes('given back unstarted'))).toEqual([]);
  });

  it('says once, with the fix, when a queue keeps giving its claims back', async () => {
    // Budget for many claims, and no grace at all: every claimed event starts after its grant, so
    // every claim is given back.
    const queues = { [QUEUE]: { concurrency: 5, rateLimit: { limit: 1000, intervalSeconds: 60 } } };
    const app = await createPeerApp(t, { ...OPTIONS, logger, queues }, database);
    try {
      await t.events.dispatch(new GraceEvent({ n: 1 }));
      app.workers.configure({ startGraceMs: 0 });
      const run = app.workers.runWorker({ queueName: QUEUE, retries: 3, runAfterSeconds: 0 });
      const givenBack = (): string[] => logger.messages('warn').filter((line) => line.includes('given back unstarted'));
      await waitFor(() => givenBack().length >= 6, 10_000);
      await app.workers.shutdown(1000);
      await run;
      const inRow = logger.messages('warn').filter((line) => line.includes('claims in a row'));
      expect(inRow).toHaveLength(1);
      expect(inRow[0]).toContain(`Queue ${QUEUE}: 3 claims in a row`);
      expect(inRow[0]).toContain('larger startGraceMs');
      expect(started).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
