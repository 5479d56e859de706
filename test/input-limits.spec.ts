/**
 * Names and sizes at the API on every database: queue names, unique keys and schedule names compare
 * exactly (trailing spaces count), names that could not be stored are refused with typed errors, NUL
 * in error text is stored readable, and lengths, ranges and payload sizes are bounded. Each refusal
 * stores nothing and leaves the connection usable.
 */
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import {
  BaseEvent,
  EventService,
  FailedWorkerService,
  InvalidWorkerOptionsError,
  QueueEvent,
  RecurringEventScheduler,
  UnserializablePayloadError,
  WORKER_DATA_SOURCE,
  WorkerModule,
} from '../lib/index.js';
import { ensureServerDatabase, serverDatabases, testDatabases, workerDatabaseName } from './support/databases.js';
import { createTestApp, failedRows, pendingRows, runOncePass, type TestApp } from './support/test-app.js';

const ran: string[] = [];

@QueueEvent('mail')
class MailEvent extends BaseEvent<{ label: string }> {
  async execute(): Promise<void> {
    ran.push(`mail: ${this.getPayload().label}`);
  }
}

@QueueEvent('mail ')
class PaddedMailEvent extends BaseEvent<{ label: string }> {
  async execute(): Promise<void> {
    ran.push(`mail-space: ${this.getPayload().label}`);
  }
}

@QueueEvent('nul-errors', { retries: 2 })
class NulErrorEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    throw new Error('bad byte \u0000 in the message');
  }
}

/** Throws a 20 MB message (a handler that puts a whole response body in its error). */
@QueueEvent('huge-errors', { retries: 2 })
class HugeErrorEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    throw new Error(`upstream said: ${'x'.repeat(20 * 1024 * 1024)}`);
  }
}

@QueueEvent('limits')
class AnyPayloadEvent extends BaseEvent<unknown> {
  async execute(): Promise<void> {}
}

/** Its queue comes from the payload: only a dispatch can check it. */
class DynamicQueueEvent extends BaseEvent<{ queue: string } | null> {
  async execute(): Promise<void> {}
  override getQueueName(): string {
    return this.getPayload()?.queue ?? 'dynamic';
  }
}

const events = [DynamicQueueEvent];

async function expectInvalid(attempt: () => Promise<unknown>, field: string, problem: string): Promise<void> {
  await expect(attempt()).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
  await expect(attempt()).rejects.toThrow(`Invalid nestjs-workers option "${field}": ${problem}`);
}

describe.each(testDatabases())('names, keys and payloads at the limits ($name)', (database) => {
  let t: TestApp;

  beforeEach(async () => {
    ran.length = 0;
    t = await createTestApp({ events, maxPayloadBytes: 2 * 1024 * 1024 }, {}, database);
  });

  afterEach(async () => {
    await t.close();
  });

  /** Nothing was stored, and the next dispatch goes through (the pooled connection is still fine). */
  async function expectNothingStoredAndNextDispatchWorks(): Promise<void> {
    expect(await pendingRows(t.dataSource)).toEqual([]);
    await t.events.dispatch(new AnyPayloadEvent({ after: true }));
    expect((await pendingRows(t.dataSource)).map((row) => row.payload)).toEqual(['{"after":true}']);
  }

  it("compares queue names exactly: a worker of 'mail' never runs an event of 'mail '", async () => {
    await t.events.dispatch(new PaddedMailEvent({ label: 'padded' }));
    await t.events.dispatch(new MailEvent({ label: 'plain' }));
    expect(await t.workers.runWorker(runOncePass('mail'))).toMatchObject({ processed: 1, failed: 0 });
    expect(ran).toEqual(['mail: plain']);
    expect((await pendingRows(t.dataSource)).map((row) => row.queue_name)).toEqual(['mail ']);
    expect(await t.workers.runWorker(runOncePass('mail '))).toMatchObject({ processed: 1 });
    expect(ran).toEqual(['mail: plain', 'mail-space: padded']);
  });

  it("compares unique keys exactly: 'key ' and 'key' are two rows", async () => {
    const padded = await t.events.dispatch(new MailEvent({ label: 'padded' }), { uniqueKey: 'key ' });
    const plain = await t.events.dispatch(new MailEvent({ label: 'plain' }), { uniqueKey: 'key' });
    expect(plain).not.toBe(padded);
    expect((await pendingRows(t.dataSource)).map((row) => row.unique_key)).toEqual(['key ', 'key']);
    // The key still holds: a second 'key' adopts the row that has it.
    expect(await t.events.dispatch(new MailEvent({ label: 'again' }), { uniqueKey: 'key' })).toBe(plain);
    expect(await pendingRows(t.dataSource)).toHaveLength(2);
  });

  it("filters the failed store exactly: queue 'mail' does not list the rows of 'mail '", async () => {
    await t.events.dispatch(new MailEvent({ label: 'plain' }));
    await t.events.dispatch(new PaddedMailEvent({ label: 'padded' }));
    await t.dataSource.query("UPDATE nestjs_workers SET event_name = 'GoneEvent'");
    await t.workers.runWorker(runOncePass('mail'));
    await t.workers.runWorker(runOncePass('mail '));
    const failed = t.app.get(FailedWorkerService);
    expect((await failed.list({ queueName: 'mail' })).items.map((item) => item.queueName)).toEqual(['mail']);
    expect((await failed.list({ queueName: 'mail ' })).items.map((item) => item.queueName)).toEqual(['mail ']);
  });

  it("compares schedule names exactly: schedules 'digest' and 'digest ' each dispatch their slot", async () => {
    const recurring = [
      { event: MailEvent, cron: '0 * * * *', name: 'digest', payload: { label: 'plain' } },
      { event: MailEvent, cron: '0 * * * *', name: 'digest ', payload: { label: 'padded' } },
    ];
    const app = await createTestApp({ events, recurring }, {}, database);
    try {
      const scheduler = app.app.get(RecurringEventScheduler);
      const slot = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000);
      const plain = await scheduler.dispatchSlot('digest', slot);
      const padded = await scheduler.dispatchSlot('digest ', slot);
      expect(plain).toBeDefined();
      expect(padded).toBeDefined();
      expect(padded).not.toBe(plain);
      expect((await pendingRows(app.dataSource)).map((row) => row.payload)).toEqual([
        '{"label":"plain"}',
        '{"label":"padded"}',
      ]);
      // Each slot still runs once: dispatching it again adds nothing.
      expect(await scheduler.dispatchSlot('digest ', slot)).toBeUndefined();
    } finally {
      await app.close();
    }
  });

  it.each([
    ['a lone high surrogate', 'x\ud800', 'must be well-formed Unicode'],
    ['a lone low surrogate', 'x\udc00', 'must be well-formed Unicode'],
    ['NUL', 'key\u0000', 'must not contain NUL'],
    ['256 characters', 'k'.repeat(256), 'must be at most 255 characters (got 256)'],
  ])('refuses a unique key with %s, storing nothing', async (_kind, uniqueKey, problem) => {
    await expectInvalid(() => t.events.dispatch(new MailEvent({ label: 'x' }), { uniqueKey }), 'uniqueKey', problem);
    await expectNothingStoredAndNextDispatchWorks();
  });

  it('accepts a key of 255 characters, astral ones counted as one, and stores it whole', async () => {
    const uniqueKey = '😀'.repeat(255);
    await t.events.dispatch(new MailEvent({ label: 'x' }), { uniqueKey });
    expect((await pendingRows(t.dataSource)).map((row) => row.unique_key)).toEqual([uniqueKey]);
  });

  it.each([
    ['300 characters', 'q'.repeat(300), 'must be at most 255 characters (got 300)'],
    ['NUL', 'mail\u0000', 'must not contain NUL'],
    ['a lone surrogate', 'mail\ud800', 'must be well-formed Unicode'],
  ])(
    'refuses a queue name (from getQueueName()) with %s at dispatch, storing nothing',
    async (_kind, queue, problem) => {
      await expectInvalid(
        () => t.events.dispatch(new DynamicQueueEvent({ queue })),
        'queue name of DynamicQueueEvent',
        problem,
      );
      await expectInvalid(
        () => t.events.dispatchMany([new DynamicQueueEvent({ queue })]),
        'queue name of DynamicQueueEvent',
        problem,
      );
      await expectNothingStoredAndNextDispatchWorks();
    },
  );

  it.each([
    ['a queue name with NUL', { queueName: 'mail\u0000' }, 'queueName', 'must not contain NUL'],
    ['an event name with a lone surrogate', { eventName: 'Event\ud800' }, 'eventName', 'must be well-formed Unicode'],
    [
      'a 256-character queue name',
      { queueName: 'q'.repeat(256) },
      'queueName',
      'must be at most 255 characters (got 256)',
    ],
    ['page 1e300', { page: 1e300 }, 'page', `must be at most ${Math.floor(Number.MAX_SAFE_INTEGER / 20)} (got 1e+300)`],
  ])('refuses a failed-store query with %s with a typed error', async (_kind, query, field, problem) => {
    const failed = t.app.get(FailedWorkerService);
    await expectInvalid(() => failed.list(query), field, problem);
    const { page, ...filter } = query as { page?: number };
    if (page === undefined) await expectInvalid(() => failed.retryAll(filter), field, problem);
    expect(await failed.list({})).toMatchObject({ total: 0 });
  });

  it('refuses health and statistics queries for queue names with NUL or lone surrogates', async () => {
    await expectInvalid(() => t.workers.getHealth(['mail', 'mail\u0000']), 'queueNames[1]', 'must not contain NUL');
    await expectInvalid(
      () => t.workers.getQueueStatistics(['mail\udc00']),
      'queueNames[0]',
      'must be well-formed Unicode',
    );
    expect(await t.workers.getHealth(['mail '])).toEqual([{ queueName: 'mail ', active: 0, failed: 0, total: 0 }]);
  });

  it('refuses cancel targets with NUL or lone surrogates', async () => {
    await expectInvalid(
      () => t.workers.cancel({ queueName: 'mail', uniqueKey: 'k\u0000' }),
      'uniqueKey',
      'must not contain NUL',
    );
    await expectInvalid(
      () => t.workers.cancel({ queueName: 'mail\udfff', uniqueKey: 'k' }),
      'queueName',
      'must be well-formed Unicode',
    );
  });

  it('refuses delaySeconds: 1e300 with a typed error, storing nothing', async () => {
    await expectInvalid(
      () => t.events.dispatch(new MailEvent({ label: 'x' }), { delaySeconds: 1e300 }),
      'delaySeconds',
      'must be at most',
    );
    await expectInvalid(
      () => t.events.dispatchMany([new MailEvent({ label: 'x' })], { delaySeconds: 1e300 }),
      'delaySeconds',
      'must be at most',
    );
    await expectNothingStoredAndNextDispatchWorks();
  });

  it('refuses a 17 MB payload (above maxPayloadBytes) with UnserializablePayloadError; the connection stays usable', async () => {
    const payload = { blob: 'x'.repeat(17 * 1024 * 1024) };
    await expect(t.events.dispatch(new AnyPayloadEvent(payload))).rejects.toThrow(UnserializablePayloadError);
    await expect(t.events.dispatchMany([new AnyPayloadEvent(payload)])).rejects.toThrow(
      `Cannot dispatch AnyPayloadEvent: payload is ${17 * 1024 * 1024 + 11} bytes of JSON, more than maxPayloadBytes (${2 * 1024 * 1024})`,
    );
    await expectNothingStoredAndNextDispatchWorks();
  });

  it('stores a payload up to the configured maxPayloadBytes, counted in UTF-8 bytes', async () => {
    // 1.5 MiB of JSON: above the 1 MiB default, within this app's 2 MiB.
    await t.events.dispatch(new AnyPayloadEvent({ blob: 'é'.repeat(786_432) }));
    const [row] = await pendingRows(t.dataSource);
    expect(Buffer.byteLength(String(row!.payload))).toBe(1_572_864 + 11);
    // Two bytes each: 1,048,576 characters are 2 MiB of UTF-8, over the limit although the text is shorter.
    await expect(t.events.dispatch(new AnyPayloadEvent({ blob: 'é'.repeat(1_048_576) }))).rejects.toThrow(
      'more than maxPayloadBytes',
    );
  });

  it('stores the error of an event that threw a message with NUL, retries it and moves it to the failed store readable', async () => {
    await t.events.dispatch(new NulErrorEvent(null));
    expect(await t.workers.runWorker(runOncePass('nul-errors', { retries: 2 }))).toMatchObject({
      retried: 1,
      failed: 0,
    });
    const [retried] = await pendingRows(t.dataSource);
    expect(retried).toMatchObject({ attempts: 1 });
    expect(String(retried!.error)).toContain('Error: bad byte \ufffd in the message');
    expect(await t.workers.runWorker(runOncePass('nul-errors', { retries: 2 }))).toMatchObject({
      retried: 0,
      failed: 1,
    });
    expect(await pendingRows(t.dataSource)).toEqual([]);
    const [failed] = await failedRows(t.dataSource);
    expect(failed).toMatchObject({ event_name: 'NulErrorEvent', attempts: 2 });
    expect(String(failed!.error)).toContain('Error: bad byte \ufffd in the message');
    expect(String(failed!.error)).not.toContain('attempt never finished');
  });

  it('cuts a 20 MB error message to 64 KiB, so the retry and the failed move are stored (MariaDB: under max_allowed_packet)', async () => {
    await t.events.dispatch(new HugeErrorEvent(null));
    expect(await t.workers.runWorker(runOncePass('huge-errors', { retries: 2 }))).toMatchObject({
      retried: 1,
      failed: 0,
    });
    const [retried] = await pendingRows(t.dataSource);
    expect(String(retried!.error)).toMatch(/^Error: upstream said: x{100}/);
    expect(String(retried!.error)).toMatch(/… \(\d+ more characters cut\)$/);
    expect(String(retried!.error).length).toBeLessThan(65 * 1024);
    expect(await t.workers.runWorker(runOncePass('huge-errors', { retries: 2 }))).toMatchObject({
      retried: 0,
      failed: 1,
    });
    const [failed] = await failedRows(t.dataSource);
    expect(failed).toMatchObject({ event_name: 'HugeErrorEvent', attempts: 2 });
    expect(String(failed!.error)).toMatch(/^Error: upstream said: x{100}/);
    // The pooled connections are fine: the next write goes through.
    await t.events.dispatch(new HugeErrorEvent(null));
  });
});

for (const database of serverDatabases().filter((server) => server.type === 'postgres'))
  describe(`database.schema (${database.name})`, () => {
    it('refuses a crafted database.schema at startup, executing nothing', async () => {
      const url = await ensureServerDatabase(database, workerDatabaseName('schema'));
      const admin = await new DataSource({ type: 'postgres', url }).initialize();
      try {
        await admin.query('CREATE TABLE IF NOT EXISTS victim (id int)');
        const schema = 'x" (id int); DROP TABLE victim; --';
        const compile = () =>
          Test.createTestingModule({
            imports: [
              WorkerModule.forRoot({
                autoStart: false,
                database: { type: 'postgres', url, schema, synchronize: true, migrationsRun: true },
              }),
            ],
          }).compile();
        await expect(compile()).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
        await expect(compile()).rejects.toThrow(
          'Invalid nestjs-workers option "database.schema": must be a plain PostgreSQL identifier',
        );
        expect(await admin.query("SELECT to_regclass('public.victim') IS NOT NULL AS present")).toEqual([
          { present: true },
        ]);
        expect(
          await admin.query("SELECT count(*)::int AS tables FROM pg_tables WHERE tablename LIKE 'nestjs_%'"),
        ).toEqual([{ tables: 0 }]);
      } finally {
        await admin.destroy();
      }
    });
  });

for (const database of serverDatabases().filter((server) => server.type === 'mariadb'))
  describe(`exact names when type is mysql (${database.name})`, () => {
    it.each([
      ['migrationsRun', { migrationsRun: true }],
      ['synchronize', { synchronize: true }],
    ])(
      "gives MariaDB reached as type 'mysql' (as the sample does) a NO PAD collation with %s: 'key ' and 'key' are two rows",
      async (how, setUp) => {
        const url = await ensureServerDatabase(database, workerDatabaseName(`mysqltype_${how}`));
        const moduleRef = await Test.createTestingModule({
          imports: [WorkerModule.forRoot({ autoStart: false, database: { type: 'mysql', url, ...setUp } })],
        }).compile();
        const app = await moduleRef.init();
        try {
          const dataSource = app.get<DataSource>(WORKER_DATA_SOURCE);
          const collations = (await dataSource.query(
            'SELECT DISTINCT COLLATION_NAME AS collation FROM information_schema.COLUMNS ' +
              "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('nestjs_workers', 'nestjs_failed_workers', 'nestjs_workers_schedules') " +
              "AND COLUMN_NAME IN ('queue_name', 'event_name', 'unique_key', 'name')",
          )) as { collation: string }[];
          expect(collations).toEqual([{ collation: 'utf8mb4_nopad_bin' }]);
          const events = app.get(EventService);
          await events.dispatch(new MailEvent({ label: 'padded' }), { uniqueKey: 'key ' });
          await events.dispatch(new MailEvent({ label: 'plain' }), { uniqueKey: 'key' });
          expect((await pendingRows(dataSource)).map((row) => row.unique_key)).toEqual(['key ', 'key']);
        } finally {
          await app.close();
        }
      },
    );
  });
