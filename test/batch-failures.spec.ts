/**
 * retryWorkers() and failWorkers() of TypeOrmWorkerRepository on every database: a batch's failures
 * recorded in one transaction each, fenced by the lease token (a row taken over is not touched, a row
 * cancelled while it ran is removed), the failed move all or nothing, and the per-row fallback.
 */
import { jest } from '@jest/globals';
import {
  BaseEvent,
  type IWorkerModel,
  type IWorkerQueueRepository,
  QueueEvent,
  TypeOrmWorkerCreator,
  TypeOrmWorkerRepository,
  type WorkerLifecycleEvent,
  WorkerLifecycle,
  WorkerService,
} from '../lib/index.js';
import type { AtomicWork } from '../lib/storage/sql/statement.js';
import { dialectFor } from '../lib/storage/dialects/dialect-for.js';
import { multiRowInserts } from '../lib/storage/sql/insert.js';
import { testDatabases } from './support/databases.js';
import {
  createTestApp,
  execute,
  failedRows,
  pendingRows,
  RecordingLogger,
  runOncePass,
  type TestApp,
} from './support/test-app.js';

/** Run before an event of the batch fails (set by a test). */
let beforeFailing: (n: number) => Promise<void> = async () => undefined;

@QueueEvent('batch-failures', { retries: 3, runAfterSeconds: 2 })
class RetriedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    await beforeFailing(this.getPayload().n);
    throw new Error(`retry me ${this.getPayload().n}`);
  }
}

@QueueEvent('batch-failures', { retries: 1 })
class ExhaustedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    await beforeFailing(this.getPayload().n);
    throw new Error(`give up ${this.getPayload().n}`);
  }
}

@QueueEvent('batch-failures')
class SucceedingEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

const payloadOf = (row: Record<string, unknown>): number => (JSON.parse(String(row.payload)) as { n: number }).n;

describe.each(testDatabases())('failed attempts recorded per batch ($name)', (database) => {
  let t: TestApp;
  let logger: RecordingLogger;

  beforeEach(async () => {
    logger = new RecordingLogger();
    t = await createTestApp({ logger, events: [RetriedEvent, ExhaustedEvent, SucceedingEvent] }, {}, database);
  });

  afterEach(async () => {
    beforeFailing = async () => undefined;
    jest.restoreAllMocks();
    await t.close();
  });

  /** Counts the dialect's transactions (atomically) and the statements each one ran. */
  function countTransactions(): number[] {
    const dialect = dialectFor(t.dataSource);
    const original = dialect.atomically.bind(dialect);
    const statements: number[] = [];
    jest.spyOn(dialect, 'atomically').mockImplementation(<T>(work: AtomicWork<T>) => {
      const index = statements.push(0) - 1;
      return original<T>(function* () {
        const steps = work();
        let step = steps.next();
        while (!step.done) {
          statements[index]!++;
          step = steps.next(yield step.value);
        }
        return step.value;
      });
    });
    return statements;
  }

  /** Claims every due row of the queue as one worker would (one lease). */
  async function claimAll(repository: TypeOrmWorkerRepository): Promise<IWorkerModel[]> {
    return repository.claimWorkers({
      queueName: 'batch-failures',
      limit: 100,
      workerId: 'A',
      leaseMs: 60_000,
      dueBy: new Date(),
    });
  }

  const idOf = (model: IWorkerModel): string => model.getWorkerData()!.id!;

  it('records the retries and the failed moves of a batch in one transaction each, with every outcome as one by one', async () => {
    const events = Array.from({ length: 12 }, (_, n) =>
      n % 3 === 0 ? new RetriedEvent({ n }) : n % 3 === 1 ? new ExhaustedEvent({ n }) : new SucceedingEvent({ n }),
    );
    await t.events.dispatchMany(events);
    const createdAt = new Map((await pendingRows(t.dataSource)).map((row) => [payloadOf(row), row.created_at]));
    const announced: WorkerLifecycleEvent[] = [];
    t.app.get(WorkerLifecycle).subscribe((event) => void announced.push(event), 'test');
    const transactions = countTransactions();
    const before = Date.now();

    const result = await t.workers.runWorker(runOncePass('batch-failures', { concurrency: 3, batchSize: 12 }));

    expect(result).toEqual({ queueName: 'batch-failures', processed: 4, retried: 4, failed: 4, cancelled: 0 });
    // One for the retries (locking read, UPDATE), one for the failed moves (locking read, DELETE, INSERT).
    expect(transactions).toEqual([2, 3]);

    const pending = await pendingRows(t.dataSource);
    expect(pending.map(payloadOf)).toEqual([0, 3, 6, 9]);
    for (const row of pending) {
      expect(row).toMatchObject({
        event_name: 'RetriedEvent',
        attempts: 1,
        retries: 3,
        lease_token: null,
        locked_by: null,
        deleted_at: null,
      });
      expect(String(row.error)).toMatch(new RegExp(`^Error: retry me ${payloadOf(row)}\\n\\s+at `));
      expect(Number(row.available_at)).toBeGreaterThanOrEqual(before + 2000);
      expect(Number(row.available_at)).toBeLessThan(Date.now() + 2000);
    }

    const failed = await failedRows(t.dataSource);
    expect(failed.map(payloadOf)).toEqual([1, 4, 7, 10]);
    for (const row of failed) {
      expect(row).toMatchObject({
        event_name: 'ExhaustedEvent',
        queue_name: 'batch-failures',
        attempts: 1,
        retries: 1,
        deleted_at: null,
      });
      expect(String(row.error)).toMatch(new RegExp(`^Error: give up ${payloadOf(row)}\\n\\s+at `));
      expect(Number(row.failed_at)).toBeGreaterThanOrEqual(before);
      expect(row.created_at).toBe(createdAt.get(payloadOf(row)));
    }

    // Each failure is still logged as it happens, and announced once recorded.
    expect(logger.messages('error').filter((message) => message.startsWith('Event processing failed'))).toHaveLength(8);
    expect(logger.messages('error').filter((message) => !message.startsWith('Event processing failed'))).toEqual([]);
    const counted = (name: string) => announced.filter((event) => event.name === name);
    expect(counted('retrying').map((event) => event.attributes.payload)).toEqual(
      expect.arrayContaining([{ n: 0 }, { n: 3 }, { n: 6 }, { n: 9 }]),
    );
    expect(counted('failed')).toHaveLength(4);
    for (const event of [...counted('retrying'), ...counted('failed')]) {
      expect(event.error).toBeInstanceOf(Error);
      expect(event.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('reports a row cancelled while it ran as cancelled and removes it, in a batch with other failures', async () => {
    await t.events.dispatchMany([
      new RetriedEvent({ n: 0 }),
      new ExhaustedEvent({ n: 1 }),
      new RetriedEvent({ n: 2 }),
      new ExhaustedEvent({ n: 3 }),
    ]);
    const announced: string[] = [];
    t.app
      .get(WorkerLifecycle)
      .subscribe(
        (event) => void announced.push(`${event.name} ${(event.attributes.payload as { n: number }).n}`),
        'test',
      );
    beforeFailing = async (n) => {
      // Another process cancels rows 1 and 2 (n 0 and 1) after they failed, before this worker's heartbeat tells it.
      if (n === 2)
        await execute(t.dataSource, 'UPDATE nestjs_workers SET deleted_at = ?, unique_key = NULL WHERE id IN (1, 2)', [
          Date.now(),
        ]);
    };

    const result = await t.workers.runWorker(runOncePass('batch-failures', { concurrency: 1, batchSize: 4 }));

    expect(result).toEqual({ queueName: 'batch-failures', processed: 0, retried: 1, failed: 1, cancelled: 2 });
    expect((await pendingRows(t.dataSource)).map(payloadOf)).toEqual([2]);
    expect((await failedRows(t.dataSource)).map(payloadOf)).toEqual([3]);
    expect(announced.sort()).toEqual(['cancelled 0', 'cancelled 1', 'failed 3', 'retrying 2']);
    expect(logger.messages('log')).toEqual(
      expect.arrayContaining(['RetriedEvent (row 1) was cancelled; its row is removed and not retried']),
    );
  });

  it('is fenced by the lease: rows taken over are not touched and reported lease-lost, cancelled ones removed', async () => {
    await t.events.dispatchMany(Array.from({ length: 6 }, (_, n) => new RetriedEvent({ n })));
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    const creator = new TypeOrmWorkerCreator(t.dataSource);
    const claimed = await claimAll(repository);
    expect(claimed).toHaveLength(6);
    // Rows 2 and 5 were taken over by another worker; rows 3 and 6 were cancelled while they ran.
    await t.dataSource.query("UPDATE nestjs_workers SET lease_token = 'other', locked_by = 'B' WHERE id IN (2, 5)");
    expect(await t.workers.cancel('3')).toMatchObject({ wasRunning: true });
    expect(await t.workers.cancel('6')).toMatchObject({ wasRunning: true });
    const availableAt = new Date(Date.now() + 30_000);

    const retried = await repository.retryWorkers(
      claimed.slice(0, 3).map((model) => ({ model, retry: { error: `late ${idOf(model)}`, retries: 7, availableAt } })),
    );
    expect(retried).toEqual(
      new Map([
        ['1', 'retried'],
        ['2', 'lease-lost'],
        ['3', 'cancelled'],
      ]),
    );

    const failed = await repository.failWorkers(
      claimed.slice(3).map((model) => ({
        model,
        failed: creator.createFailedWorkerModel({ ...model.getWorkerData()!, error: `final ${idOf(model)}` }),
      })),
    );
    expect(failed).toEqual(
      new Map([
        ['4', 'moved'],
        ['5', 'lease-lost'],
        ['6', 'cancelled'],
      ]),
    );

    const pending = await pendingRows(t.dataSource);
    expect(pending.map((row) => row.id)).toEqual([1, 2, 5]);
    expect(pending[0]).toMatchObject({
      error: 'late 1',
      retries: 7,
      attempts: 1,
      available_at: availableAt.getTime(),
      lease_token: null,
      locked_by: null,
    });
    for (const taken of pending.slice(1))
      expect(taken).toMatchObject({ error: null, retries: 3, attempts: 1, lease_token: 'other', locked_by: 'B' });
    expect((await failedRows(t.dataSource)).map((row) => [payloadOf(row), row.error])).toEqual([[3, 'final 4']]);
  });

  it('moves to the failed store all or nothing: when an INSERT of the failed copies fails, no pending row is deleted', async () => {
    await t.events.dispatchMany(Array.from({ length: 3 }, (_, n) => new ExhaustedEvent({ n })));
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    const creator = new TypeOrmWorkerCreator(t.dataSource);
    const claimed = await claimAll(repository);
    const entries = claimed.map((model, index) => ({
      model,
      // The last copy breaks the INSERT (event_name is NOT NULL).
      failed: creator.createFailedWorkerModel({
        ...model.getWorkerData()!,
        error: 'final',
        ...(index === 2 ? { eventName: null as never } : {}),
      }),
    }));

    // By message: better-sqlite3's errors may come from another realm than Jest's Error.
    const settled = await repository.failWorkers(entries).then(
      (outcomes) => outcomes,
      (error: { message?: string }) => error.message,
    );
    expect(settled).toMatch(/null/i);

    expect(await failedRows(t.dataSource)).toEqual([]);
    const pending = await pendingRows(t.dataSource);
    expect(pending).toHaveLength(3);
    for (const row of pending)
      expect(row).toMatchObject({ lease_token: (claimed[0] as { leaseToken?: string }).leaseToken, deleted_at: null });
    // Still held: the same batch moves once the copies are right.
    const fixed = entries.map(({ model }) => ({
      model,
      failed: creator.createFailedWorkerModel({ ...model.getWorkerData()!, error: 'final' }),
    }));
    expect([...(await repository.failWorkers(fixed)).values()]).toEqual(['moved', 'moved', 'moved']);
    expect(await pendingRows(t.dataSource)).toEqual([]);
    expect(await failedRows(t.dataSource)).toHaveLength(3);
  });

  it('logs a batch it could not record and leaves its rows leased (they run again when the lease expires)', async () => {
    await t.events.dispatchMany([new RetriedEvent({ n: 0 }), new ExhaustedEvent({ n: 1 })]);
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    jest.spyOn(repository, 'retryWorkers').mockRejectedValue(new Error('connection reset'));
    jest.spyOn(repository, 'failWorkers').mockRejectedValue(new Error('connection reset'));
    const standalone = workerServiceWith(repository);

    expect(await standalone.runWorker(runOncePass('batch-failures'))).toEqual({
      queueName: 'batch-failures',
      processed: 0,
      retried: 0,
      failed: 0,
      cancelled: 0,
    });
    expect(logger.messages('error').filter((message) => message.startsWith('Could not record'))).toEqual([
      'Could not record 1 failed attempts of queue batch-failures; they run again when their lease expires: connection reset',
      'Could not record 1 failed attempts of queue batch-failures; they run again when their lease expires: connection reset',
    ]);
    const pending = await pendingRows(t.dataSource);
    expect(pending).toHaveLength(2);
    for (const row of pending) expect(row).toMatchObject({ attempts: 1, error: null, locked_by: standalone.workerId });
  });

  it('falls back to one write per row for a repository without the batch methods, with the same outcomes', async () => {
    await t.events.dispatchMany([
      new RetriedEvent({ n: 0 }),
      new ExhaustedEvent({ n: 1 }),
      new SucceedingEvent({ n: 2 }),
    ]);
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    // A custom repository with only the required methods.
    const withoutBatches: IWorkerQueueRepository = {
      getWorkers: () => repository.getWorkers(),
      claimWorkers: (request) => repository.claimWorkers(request),
      countDueWorkers: (queueName, dueBy) => repository.countDueWorkers(queueName, dueBy),
      completeWorker: (model) => repository.completeWorker(model),
      retryWorker: (model, retry) => repository.retryWorker(model, retry),
      failWorker: (model, failed) => repository.failWorker(model, failed),
      renewLeases: (models, leaseMs) => repository.renewLeases(models, leaseMs),
      releaseWorkers: (models) => repository.releaseWorkers(models),
      getQueueHealth: (queueNames) => repository.getQueueHealth(queueNames),
    };
    const retryWorker = jest.spyOn(repository, 'retryWorker');
    const failWorker = jest.spyOn(repository, 'failWorker');
    const standalone = workerServiceWith(withoutBatches);

    expect(await standalone.runWorker(runOncePass('batch-failures'))).toEqual({
      queueName: 'batch-failures',
      processed: 1,
      retried: 1,
      failed: 1,
      cancelled: 0,
    });
    expect(retryWorker).toHaveBeenCalledTimes(1);
    expect(failWorker).toHaveBeenCalledTimes(1);
    expect((await pendingRows(t.dataSource)).map(payloadOf)).toEqual([0]);
    expect((await failedRows(t.dataSource)).map(payloadOf)).toEqual([1]);
  });

  it('gives each of 700 rows its own error, due time and retries, 500 rows per UPDATE', async () => {
    await t.events.dispatchMany(Array.from({ length: 700 }, (_, n) => new RetriedEvent({ n })));
    const repository = new TypeOrmWorkerRepository(t.dataSource);
    const claimed = await repository.claimWorkers({
      queueName: 'batch-failures',
      limit: 700,
      workerId: 'A',
      leaseMs: 60_000,
      dueBy: new Date(),
    });
    const base = Date.now();
    const transactions = countTransactions();
    const outcomes = await repository.retryWorkers(
      claimed.map((model) => {
        const n = Number(idOf(model));
        return {
          model,
          retry: { error: `error ${n} ‘quoted’ ?`, retries: n % 7, availableAt: new Date(base + n * 1000) },
        };
      }),
    );
    expect([...outcomes.values()].every((outcome) => outcome === 'retried')).toBe(true);
    // The locking read, then two UPDATEs.
    expect(transactions).toEqual([3]);
    const pending = await pendingRows(t.dataSource);
    expect(pending).toHaveLength(700);
    for (const row of pending) {
      const n = Number(row.id);
      expect(row).toMatchObject({
        error: `error ${n} ‘quoted’ ?`,
        retries: n % 7,
        available_at: base + n * 1000,
        lease_token: null,
      });
    }
  });

  if (database.type !== 'better-sqlite3') {
    it('runs a batch of failed moves as one database transaction on the server', async () => {
      await t.events.dispatchMany(Array.from({ length: 10 }, (_, n) => new ExhaustedEvent({ n })));
      const repository = new TypeOrmWorkerRepository(t.dataSource);
      const creator = new TypeOrmWorkerCreator(t.dataSource);
      const claimed = await claimAll(repository);
      const createQueryRunner = t.dataSource.createQueryRunner.bind(t.dataSource);
      let transactions = 0;
      jest.spyOn(t.dataSource, 'createQueryRunner').mockImplementation((...args) => {
        const runner = createQueryRunner(...args);
        const startTransaction = runner.startTransaction.bind(runner);
        runner.startTransaction = (...level) => (transactions++, startTransaction(...level));
        return runner;
      });

      const outcomes = await repository.failWorkers(
        claimed.map((model) => ({
          model,
          failed: creator.createFailedWorkerModel({ ...model.getWorkerData()!, error: 'x' }),
        })),
      );

      expect([...outcomes.values()]).toEqual(Array(10).fill('moved'));
      expect(transactions).toBe(1);
      expect(await failedRows(t.dataSource)).toHaveLength(10);
    });
  }

  function workerServiceWith(repository: IWorkerQueueRepository): WorkerService {
    const standalone = new WorkerService();
    standalone.setLogger(logger);
    standalone.setEventService(t.events);
    standalone.setWorkerRepository(repository);
    standalone.setWorkerCreator(new TypeOrmWorkerCreator(t.dataSource));
    return standalone;
  }
});

describe('multiRowInserts', () => {
  const escape = (name: string): string => `"${name}"`;

  it('splits by bind parameters and by the text a statement carries, keeping the rows in order', () => {
    const rows = Array.from({ length: 7 }, (_, n) => ({ a: n, b: 'x'.repeat(n === 2 || n === 4 ? 1_500_000 : 10) }));
    expect(multiRowInserts('t', rows, escape, 4).map(({ size }) => size)).toEqual([2, 2, 2, 1]);
    const statements = multiRowInserts('t', rows, escape, 65_535);
    expect(statements.map(({ size }) => size)).toEqual([4, 3]);
    expect(statements[0]!.statement.sql).toBe('INSERT INTO t ("a", "b") VALUES (?, ?), (?, ?), (?, ?), (?, ?)');
    expect(statements.flatMap(({ statement }) => statement.parameters.filter((_, index) => index % 2 === 0))).toEqual([
      0, 1, 2, 3, 4, 5, 6,
    ]);
    // A row longer than the budget alone still gets its statement.
    expect(
      multiRowInserts('t', [{ a: 'y'.repeat(3_000_000) }, { a: 'z' }], escape, 65_535).map(({ size }) => size),
    ).toEqual([1, 1]);
  });
});
