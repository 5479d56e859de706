/**
 * Worker semantics in one process on every database: retries as maximum attempts, the retry delay,
 * delete on success, the atomic move to the failed store, runOnce summaries, queue isolation,
 * oldest-first order, logging, health, leases, heartbeats and crash recovery.
 */
import {
  BaseEvent,
  LeaseLostError,
  QueueEvent,
  TypeOrmWorkerCreator,
  TypeOrmWorkerRepository,
  type TEventWorkerOptions,
  WorkerService,
} from '../lib/index.js';
import { testDatabases } from './support/databases.js';
import {
  createTestApp,
  failedRows,
  pendingRows,
  RecordingLogger,
  runOncePass,
  sleep,
  type TestApp,
} from './support/test-app.js';

const log: string[] = [];

@QueueEvent('default')
class RecordEvent extends BaseEvent<{ label: string }> {
  async execute(): Promise<void> {
    log.push(this.getPayload().label);
  }
}

@QueueEvent('default')
class FailEvent extends BaseEvent<{ label: string }> {
  async execute(): Promise<void> {
    log.push(`fail ${this.getPayload().label}`);
    throw new Error(`SMTP connection failed for ${this.getPayload().label}`);
  }
}

@QueueEvent('other')
class OtherQueueEvent extends BaseEvent<{ label: string }> {
  async execute(): Promise<void> {
    log.push(`other ${this.getPayload().label}`);
  }
}

@QueueEvent('default', { retries: 1, runAfterSeconds: 0 })
class OneShotEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    log.push('one-shot');
    throw new Error('no second chance');
  }
}

@QueueEvent('slow-lease')
class SlowLeaseEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    await sleep(60);
  }
}

@QueueEvent('crowded', { retries: 1 })
class LastChanceEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    await sleep(this.getPayload().n % 3);
    throw new Error(`final failure ${this.getPayload().n}`);
  }
}

@QueueEvent('CaseQueue')
class CaseQueueEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    log.push('case');
  }
}

let longRuns = 0;
@QueueEvent('long-running')
class LongEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    longRuns++;
    await sleep(1600);
  }
}

const options = (overrides: Partial<TEventWorkerOptions> = {}): TEventWorkerOptions =>
  runOncePass('default', overrides);

describe.each(testDatabases())('delivery semantics ($name)', (database) => {
  let t: TestApp;
  let logger: RecordingLogger;

  beforeEach(async () => {
    log.length = 0;
    logger = new RecordingLogger();
    t = await createTestApp({ logger }, {}, database);
  });

  afterEach(async () => {
    await t.close();
  });

  it('deletes the row when the event succeeds', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'a' }));
    expect(await t.workers.runWorker(options())).toEqual({
      queueName: 'default',
      processed: 1,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    expect(log).toEqual(['a']);
    expect(await pendingRows(t.dataSource)).toEqual([]);
    expect(await failedRows(t.dataSource)).toEqual([]);
  });

  it('treats retries as the maximum total attempts: retries 3 runs a failing event exactly 3 times', async () => {
    await t.events.dispatch(new FailEvent({ label: 'x' }));
    const result = await t.workers.runWorker(options({ retries: 3, runOnce: false }));
    expect(result).toEqual({ queueName: 'default', processed: 0, failed: 1, retried: 2, cancelled: 0 });
    expect(log).toEqual(['fail x', 'fail x', 'fail x']);
    expect(await pendingRows(t.dataSource)).toEqual([]);
  });

  it('keeps the attempt count and last error while retrying, and makes the row due only after runAfterSeconds', async () => {
    await t.events.dispatch(new FailEvent({ label: 'later' }));
    const before = Date.now();
    expect(await t.workers.runWorker(options({ runAfterSeconds: 1 }))).toMatchObject({ retried: 1 });
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ attempts: 1, lease_token: null, locked_by: null });
    expect(String(row!.error)).toContain('SMTP connection failed for later');
    expect(Number(row!.available_at)).toBeGreaterThanOrEqual(before + 1000);

    expect(await t.workers.runWorker(options({ runAfterSeconds: 1 }))).toEqual({
      queueName: 'default',
      processed: 0,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    await sleep(1100);
    expect(await t.workers.runWorker(options({ runAfterSeconds: 1 }))).toMatchObject({ retried: 1 });
    expect(log).toEqual(['fail later', 'fail later']);
  });

  it('moves an event whose attempts ran out to the failed store with error and stack, failedAt, original createdAt and attempts', async () => {
    await t.events.dispatch(new FailEvent({ label: 'dead' }));
    const [pending] = await pendingRows(t.dataSource);
    await sleep(5);
    const beforeFail = Date.now();
    await t.workers.runWorker(options({ retries: 2, runOnce: false }));

    expect(await pendingRows(t.dataSource)).toEqual([]);
    const failed = await failedRows(t.dataSource);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      queue_name: 'default',
      event_name: 'FailEvent',
      payload: '{"label":"dead"}',
      attempts: 2,
      retries: 2,
      created_at: pending!.created_at,
    });
    expect(String(failed[0]!.error)).toMatch(/^Error: SMTP connection failed for dead\n\s+at /);
    expect(Number(failed[0]!.failed_at)).toBeGreaterThanOrEqual(beforeFail);
  });

  it('makes the failed move one transaction with the delete: after a lost lease neither table changes', async () => {
    await t.events.dispatch(new FailEvent({ label: 'fenced' }));
    const workerA = new TypeOrmWorkerRepository(t.dataSource);
    const workerB = new TypeOrmWorkerRepository(t.dataSource);
    const creator = new TypeOrmWorkerCreator(t.dataSource);
    const claim = { queueName: 'default', limit: 10, workerId: 'A', leaseMs: 1, dueBy: new Date() };

    const [claimedByA] = await workerA.claimWorkers(claim);
    await sleep(10);
    const [claimedByB] = await workerB.claimWorkers({ ...claim, workerId: 'B', leaseMs: 60_000, dueBy: new Date() });
    expect(claimedByB?.getWorkerData()?.attempts).toBe(2);

    const failedModel = creator.createFailedWorkerModel({
      ...claimedByA!.getWorkerData()!,
      error: 'late',
      failedAt: new Date(),
    });
    await expect(workerA.failWorker(claimedByA!, failedModel)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(workerA.completeWorker(claimedByA!)).rejects.toBeInstanceOf(LeaseLostError);
    await expect(
      workerA.retryWorker(claimedByA!, { error: 'late', retries: 3, availableAt: new Date() }),
    ).rejects.toBeInstanceOf(LeaseLostError);

    expect(await failedRows(t.dataSource)).toEqual([]);
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ locked_by: 'B', attempts: 2, error: null });

    await workerB.failWorker(
      claimedByB!,
      creator.createFailedWorkerModel({ ...claimedByB!.getWorkerData()!, error: 'final' }),
    );
    expect(await pendingRows(t.dataSource)).toEqual([]);
    expect(await failedRows(t.dataSource)).toHaveLength(1);
  });

  it('runOnce makes one pass over what is due and returns { processed, failed, retried }', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'ok1' }));
    await t.events.dispatch(new FailEvent({ label: 'retry' }));
    await t.events.dispatch(new OneShotEvent(null));
    await t.events.dispatch(new RecordEvent({ label: 'ok2' }));

    expect(await t.workers.runWorker(options({ retries: 2 }))).toEqual({
      queueName: 'default',
      processed: 2,
      failed: 1,
      retried: 1,
      cancelled: 0,
    });
    // The retry fell due during the pass but waits for the next one.
    expect(log).toEqual(['ok1', 'fail retry', 'one-shot', 'ok2']);
    expect(await t.workers.runWorker(options({ retries: 2 }))).toEqual({
      queueName: 'default',
      processed: 0,
      failed: 1,
      retried: 0,
      cancelled: 0,
    });
    expect(await t.workers.runWorker(options({ retries: 2 }))).toEqual({
      queueName: 'default',
      processed: 0,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
  });

  it('lets @QueueEvent options win over runWorker options, which win over the queue config', async () => {
    await t.events.dispatch(new OneShotEvent(null));
    const result = await t.workers.runWorker(options({ retries: 5, runOnce: false }));
    expect(result).toEqual({ queueName: 'default', processed: 0, failed: 1, retried: 0, cancelled: 0 });
    expect(log).toEqual(['one-shot']);
  });

  it('touches only its own queue', async () => {
    await t.events.dispatch(new OtherQueueEvent({ label: 'o' }));
    await t.events.dispatch(new RecordEvent({ label: 'd' }));
    expect(await t.workers.runWorker(options({ runOnce: false }))).toMatchObject({ processed: 1 });
    expect(log).toEqual(['d']);
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ queue_name: 'other', attempts: 0, lease_token: null });
  });

  it('tells queue names apart exactly: case matters on every database', async () => {
    t.events.registerEvents(CaseQueueEvent);
    await t.events.dispatch(new CaseQueueEvent(null));
    expect(await t.workers.runWorker(options({ queueName: 'casequeue' }))).toMatchObject({ processed: 0 });
    expect((await t.workers.getQueueStatistics(['casequeue', 'CaseQueue'])).map((queue) => queue.pending)).toEqual([
      0, 1,
    ]);
    expect(await t.workers.runWorker(options({ queueName: 'CaseQueue' }))).toMatchObject({ processed: 1 });
    expect(log).toEqual(['case']);
  });

  it('runs due events oldest first', async () => {
    for (const label of ['1', '2', '3', '4', '5']) await t.events.dispatch(new RecordEvent({ label }));
    // Row 4 was due before every other row (a retry whose delay ended long ago).
    await t.dataSource.query('UPDATE nestjs_workers SET available_at = 1 WHERE id = 4');
    await t.workers.runWorker(options());
    expect(log).toEqual(['4', '1', '2', '3', '5']);
  });

  it('logs "Queued items: N" and each failure with the event name and the error', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'a' }));
    await t.events.dispatch(new FailEvent({ label: 'b' }));
    await t.workers.runWorker(options({ runOnce: true }));
    expect(logger.messages('log')).toEqual(['Queued items: 2']);
    expect(logger.messages('error')).toEqual([
      expect.stringMatching(
        /^Event processing failed: FailEvent \(row 2, attempt 1 of 3\): SMTP connection failed for b$/,
      ),
    ]);
  });

  it('logs "Queued items: N" with the rows still due beyond a full batch, before the batch\'s first event runs', async () => {
    for (const label of ['a', 'b', 'c']) await t.events.dispatch(new RecordEvent({ label }));
    // How many events had run when each "Queued items" line was logged.
    const runsWhenLogged: number[] = [];
    const record = logger.log.bind(logger);
    logger.log = (message: string) => {
      if (message.startsWith('Queued items')) runsWhenLogged.push(log.length);
      record(message);
    };
    await t.workers.runWorker(options({ runOnce: true, concurrency: 1, batchSize: 1 }));
    expect(logger.messages('log')).toEqual(['Queued items: 3']);
    expect(runsWhenLogged).toEqual([0]);
    expect(log).toEqual(['a', 'b', 'c']);
  });

  it('reports health per queue: active (pending or running), failed, total', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'a' }));
    await t.events.dispatch(new OneShotEvent(null));
    await t.events.dispatch(new OtherQueueEvent({ label: 'b' }));
    await t.workers.runWorker(options({ queueName: 'default', runOnce: true }));
    await t.events.dispatch(new RecordEvent({ label: 'c' }));
    // Every queue of a registered event is known, and reported while empty.
    expect(await t.workers.getHealth()).toEqual([
      { queueName: 'CaseQueue', active: 0, failed: 0, total: 0 },
      { queueName: 'crowded', active: 0, failed: 0, total: 0 },
      { queueName: 'default', active: 1, failed: 1, total: 2 },
      { queueName: 'long-running', active: 0, failed: 0, total: 0 },
      { queueName: 'other', active: 1, failed: 0, total: 1 },
      { queueName: 'slow-lease', active: 0, failed: 0, total: 0 },
    ]);
    expect(await t.workers.getHealth(['other', 'empty'])).toEqual([
      { queueName: 'other', active: 1, failed: 0, total: 1 },
      { queueName: 'empty', active: 0, failed: 0, total: 0 },
    ]);
  });

  it('leases claimed rows: another worker cannot claim them until the lease expires, and the expired attempt counts', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'crashed' }));
    const crashed = new TypeOrmWorkerRepository(t.dataSource);
    const [abandoned] = await crashed.claimWorkers({
      queueName: 'default',
      limit: 1,
      workerId: 'dead-worker',
      leaseMs: 300,
      dueBy: new Date(),
    });
    expect(abandoned?.getWorkerData()?.attempts).toBe(1);

    expect(await t.workers.runWorker(options())).toEqual({
      queueName: 'default',
      processed: 0,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    await sleep(350);
    expect(await t.workers.runWorker(options())).toEqual({
      queueName: 'default',
      processed: 1,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    expect(log).toEqual(['crashed']);
  });

  it('fails a row whose final attempt never finished (worker died) instead of running it past retries', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'never' }));
    const crashed = new TypeOrmWorkerRepository(t.dataSource);
    await crashed.claimWorkers({
      queueName: 'default',
      limit: 1,
      workerId: 'dead-worker',
      leaseMs: 1,
      dueBy: new Date(),
    });
    await sleep(10);
    expect(await t.workers.runWorker(options({ retries: 1 }))).toEqual({
      queueName: 'default',
      processed: 0,
      failed: 1,
      retried: 0,
      cancelled: 0,
    });
    expect(log).toEqual([]);
    const [failed] = await failedRows(t.dataSource);
    expect(failed).toMatchObject({ attempts: 2, retries: 1 });
    expect(String(failed!.error)).toContain('used all 1 attempts: its last attempt never finished');
  });

  it('gives back claimed rows that never started, undoing their attempt', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'r' }));
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    const claimed = await repository.claimWorkers({
      queueName: 'default',
      limit: 5,
      workerId: 'w',
      leaseMs: 60_000,
      dueBy: new Date(),
    });
    await repository.releaseWorkers(claimed);
    const [row] = await pendingRows(t.dataSource);
    // Due again from when it was first queued, so it keeps its place ahead of younger rows.
    expect(row).toMatchObject({ attempts: 0, lease_token: null, locked_by: null });
    expect(row!.available_at).toBe(row!.created_at);
    expect(await t.workers.runWorker(options())).toMatchObject({ processed: 1 });
  });

  it('warns and leaves the row alone when the lease was lost while the event ran', async () => {
    const short = await createTestApp({ logger, leaseSeconds: 1, events: [SlowLeaseEvent] }, {}, database);
    try {
      await short.events.dispatch(new SlowLeaseEvent(null));
      const run = short.workers.runWorker(options({ queueName: 'slow-lease' }));
      await sleep(20);
      // Another worker takes the row over as if the lease had expired.
      await short.dataSource.query("UPDATE nestjs_workers SET lease_token = 'other', locked_by = 'other'");
      expect(await run).toEqual({ queueName: 'slow-lease', processed: 0, failed: 0, retried: 0, cancelled: 0 });
      expect(logger.messages('warn').join('\n')).toContain('was lost');
      expect(await pendingRows(short.dataSource)).toEqual([expect.objectContaining({ lease_token: 'other' })]);
    } finally {
      await short.close();
    }
  });

  it('keeps failed moves atomic and dispatches durable while they all share the SQLite connection at once', async () => {
    for (let n = 0; n < 20; n++) await t.events.dispatch(new FailEvent({ label: `crowd ${n}` }));
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    const creator = new TypeOrmWorkerCreator(t.dataSource);
    const claimed = await repository.claimWorkers({
      queueName: 'default',
      limit: 20,
      workerId: 'A',
      leaseMs: 60_000,
      dueBy: new Date(),
    });
    // Another worker has taken over half of the rows, so half of the moves must change nothing.
    await t.dataSource.query("UPDATE nestjs_workers SET lease_token = 'taken-over' WHERE id % 2 = 0");
    const moves = claimed.map((model) =>
      repository.failWorker(
        model,
        creator.createFailedWorkerModel({ ...model.getWorkerData()!, error: 'final', failedAt: new Date() }),
      ),
    );
    const dispatches = Array.from({ length: 20 }, (_, n) =>
      t.events.dispatch(new OtherQueueEvent({ label: `late ${n}` })),
    );

    const moved = await Promise.allSettled(moves);
    expect(moved.filter((outcome) => outcome.status === 'fulfilled')).toHaveLength(10);
    const rejections = moved.flatMap((outcome) => (outcome.status === 'rejected' ? [outcome.reason] : []));
    expect(rejections).toHaveLength(10);
    for (const reason of rejections) expect(reason).toBeInstanceOf(LeaseLostError);
    await Promise.all(dispatches);

    const failedIds = (await failedRows(t.dataSource)).map((row) => JSON.parse(String(row.payload)).label);
    const pending = await pendingRows(t.dataSource);
    const pendingIds = pending
      .filter((row) => row.queue_name === 'default')
      .map((row) => JSON.parse(String(row.payload)).label);
    expect(failedIds).toHaveLength(10);
    expect(pendingIds).toHaveLength(10);
    expect(new Set([...failedIds, ...pendingIds]).size).toBe(20);
    // Every dispatch that resolved left its row, none was swept into another move's rollback.
    expect(pending.filter((row) => row.queue_name === 'other')).toHaveLength(20);
  });

  it('runs final failures with concurrency 4 and records each exactly once', async () => {
    for (let n = 0; n < 40; n++) await t.events.dispatch(new LastChanceEvent({ n }));
    expect(await t.workers.runWorker(options({ queueName: 'crowded', retries: 1, concurrency: 4 }))).toEqual({
      queueName: 'crowded',
      processed: 0,
      failed: 40,
      retried: 0,
      cancelled: 0,
    });
    expect(logger.messages('error').filter((message) => !message.startsWith('Event processing failed'))).toEqual([]);
    const failed = await failedRows(t.dataSource);
    expect(failed.map((row) => JSON.parse(String(row.payload)).n).sort((a, b) => a - b)).toEqual([...Array(40).keys()]);
    expect(await pendingRows(t.dataSource)).toEqual([]);
  });

  it('renews the lease of a long event while it runs (heartbeat), so no other worker starts it meanwhile', async () => {
    longRuns = 0;
    const short = await createTestApp(
      { logger, leaseSeconds: 1, heartbeatSeconds: 0.2, events: [LongEvent] },
      {},
      database,
    );
    try {
      await short.events.dispatch(new LongEvent(null));
      const run = short.workers.runWorker(options({ queueName: 'long-running' }));
      await sleep(1250);
      // Past the 1 s lease: without renewals this worker would take the row over and run it again.
      const rival = new TypeOrmWorkerRepository(short.dataSource);
      const stolen = await rival.claimWorkers({
        queueName: 'long-running',
        limit: 1,
        workerId: 'rival',
        leaseMs: 60_000,
        dueBy: new Date(),
      });
      expect(stolen).toEqual([]);
      const [row] = await pendingRows(short.dataSource);
      expect(Number(row!.lease_expires_at)).toBeGreaterThan(Date.now() + 500);
      expect(await run).toEqual({ queueName: 'long-running', processed: 1, failed: 0, retried: 0, cancelled: 0 });
      expect(longRuns).toBe(1);
      expect(await pendingRows(short.dataSource)).toEqual([]);
    } finally {
      await short.close();
    }
  });

  it('counts an error before execute() (event options lookup) as a failed attempt and goes on with the other rows', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'first' }));
    await t.events.dispatch(new RecordEvent({ label: 'second' }));
    const eventService = t.events;
    const standalone = new WorkerService();
    standalone.setLogger(logger);
    standalone.setWorkerRepository(new TypeOrmWorkerRepository(t.dataSource));
    standalone.setWorkerCreator(new TypeOrmWorkerCreator(t.dataSource));
    let lookups = 0;
    standalone.setEventService({
      dispatch: (event) => eventService.dispatch(event),
      createEvent: (name, payload) => eventService.createEvent(name, payload),
      getEventOptions: (name) => {
        if (lookups++ === 0) throw new Error('options store unavailable');
        return eventService.getEventOptions(name);
      },
    });
    expect(await standalone.runWorker(options({ concurrency: 1 }))).toEqual({
      queueName: 'default',
      processed: 1,
      failed: 0,
      retried: 1,
      cancelled: 0,
    });
    expect(log).toEqual(['second']);
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ attempts: 1, lease_token: null });
    expect(String(row!.error)).toContain('options store unavailable');
  });

  it('leaves a row it cannot read leased (it runs again after the lease) and processes the rest of the batch', async () => {
    await t.events.dispatch(new RecordEvent({ label: 'unreadable' }));
    await t.events.dispatch(new RecordEvent({ label: 'readable' }));
    class UnreadableFirstRepository extends TypeOrmWorkerRepository {
      override async claimWorkers(request: Parameters<TypeOrmWorkerRepository['claimWorkers']>[0]) {
        const [first, ...rest] = await super.claimWorkers(request);
        if (!first) return rest;
        const broken = Object.create(first) as typeof first;
        broken.getWorkerData = () => {
          throw new Error('driver returned a row it cannot decode');
        };
        return [broken, ...rest];
      }
    }
    const standalone = new WorkerService();
    standalone.setLogger(logger);
    standalone.setEventService(t.events);
    standalone.setWorkerRepository(new UnreadableFirstRepository(t.dataSource));
    standalone.setWorkerCreator(new TypeOrmWorkerCreator(t.dataSource));
    standalone.configure({ leaseSeconds: 1 });
    expect(await standalone.runWorker(options({ concurrency: 2 }))).toEqual({
      queueName: 'default',
      processed: 1,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    expect(log).toEqual(['readable']);
    expect(logger.messages('error').join('\n')).toContain('driver returned a row it cannot decode');
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ attempts: 1, payload: '{"label":"unreadable"}' });
    expect(row!.lease_token).not.toBeNull();

    // Past the 1 s lease with room for the last heartbeat, which may land as the batch ends.
    await sleep(1400);
    expect(await t.workers.runWorker(options())).toEqual({
      queueName: 'default',
      processed: 1,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    expect(log).toEqual(['readable', 'unreadable']);
  });
});
