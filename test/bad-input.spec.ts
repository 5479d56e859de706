/**
 * Bad input on SQLite: payloads that do not survive JSON, unregistered event classes, unknown event
 * names and unreadable payloads at run time (moved to the failed store), and invalid module or
 * @QueueEvent() options, each with a typed error and nothing stored or lost.
 */
import { jest } from '@jest/globals';
import { Test } from '@nestjs/testing';
import {
  BaseEvent,
  InvalidWorkerOptionsError,
  QueueEvent,
  type TEventWorkerOptions,
  UnknownEventError,
  UnserializablePayloadError,
  WorkerModule,
  type WorkerModuleOptions,
} from '../lib/index.js';
import {
  createTestApp,
  failedRows,
  pendingRows,
  RecordingLogger,
  runOncePass,
  type TestApp,
} from './support/test-app.js';

@QueueEvent('bad')
class AnyPayloadEvent extends BaseEvent<unknown> {
  static runs = 0;
  async execute(): Promise<void> {
    AnyPayloadEvent.runs++;
  }
}

@QueueEvent('bad')
class ThrowsValueEvent extends BaseEvent<{ kind: 'string' | 'object' | 'undefined' | 'number' }> {
  async execute(): Promise<void> {
    const thrown = { string: 'plain string', object: { code: 42 }, undefined: undefined, number: 7 }[
      this.getPayload().kind
    ];
    throw thrown;
  }
}

/** Overrides getQueueName() but is neither decorated nor listed: a worker could never run it. */
class UnregisteredEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
  override getQueueName(): string {
    return 'bad';
  }
}

class Money {
  constructor(readonly cents: number) {}
}

const run = (overrides: Partial<TEventWorkerOptions> = {}): TEventWorkerOptions => runOncePass('bad', overrides);

describe('bad input at dispatch and at run time', () => {
  let t: TestApp;
  let logger: RecordingLogger;

  beforeEach(async () => {
    logger = new RecordingLogger();
    t = await createTestApp({ logger });
    AnyPayloadEvent.runs = 0;
  });

  afterEach(async () => {
    await t.close();
  });

  const cyclic: Record<string, unknown> = { name: 'loop' };
  cyclic.self = cyclic;
  // eslint-disable-next-line no-sparse-arrays -- the hole is the bad input under test
  const sparse = [1, , 3];

  it.each([
    ['a function', { callback: () => 1 }, 'payload.callback is a function'],
    ['a cycle', cyclic, 'payload.self refers back to itself (a cycle)'],
    ['a BigInt', { amount: 10n }, 'payload.amount is a BigInt'],
    ['a Date', { at: new Date() }, 'payload.at is a Date instance'],
    ['a Map', { index: new Map([[1, 2]]) }, 'payload.index is a Map instance'],
    ['a class instance', { price: new Money(5) }, 'payload.price is a Money instance'],
    ['NaN', { ratio: Number.NaN }, 'payload.ratio is NaN'],
    ['Infinity', [Number.POSITIVE_INFINITY], 'payload[0] is Infinity'],
    ['a symbol', { tag: Symbol('x') }, 'payload.tag is a symbol'],
    ['undefined in an array', [1, undefined], 'payload[1] is undefined inside an array'],
    ['an array hole', sparse, 'payload has a hole at index 1'],
  ])(
    'rejects a payload holding %s with UnserializablePayloadError naming the path, and stores nothing',
    async (_kind, payload, message) => {
      const dispatch = t.events.dispatch(new AnyPayloadEvent(payload));
      await expect(dispatch).rejects.toBeInstanceOf(UnserializablePayloadError);
      await expect(t.events.dispatch(new AnyPayloadEvent(payload))).rejects.toThrow(
        `Cannot dispatch AnyPayloadEvent: ${message}`,
      );
      expect(await pendingRows(t.dataSource)).toEqual([]);
    },
  );

  it('rejects a payload nested 10,000 deep with UnserializablePayloadError (no stack overflow), and stores nothing', async () => {
    let deep: unknown = 'bottom';
    for (let level = 0; level < 10_000; level++) deep = level % 2 ? { next: deep } : [deep];
    await expect(t.events.dispatch(new AnyPayloadEvent(deep))).rejects.toThrow(UnserializablePayloadError);
    await expect(t.events.dispatch(new AnyPayloadEvent(deep))).rejects.toThrow(
      'nests more than 100 arrays or objects deep',
    );
    expect(await pendingRows(t.dataSource)).toEqual([]);
    let hundred: unknown = 'bottom';
    for (let level = 0; level < 100; level++) hundred = [hundred];
    await t.events.dispatch(new AnyPayloadEvent(hundred));
    expect(await pendingRows(t.dataSource)).toHaveLength(1);
  });

  it('reads a payload once: a getter answering 1, then NaN, is stored (and run) as 1', async () => {
    let reads = 0;
    const payload = {
      get n(): number {
        return ++reads === 1 ? 1 : Number.NaN;
      },
    };
    await t.events.dispatch(new AnyPayloadEvent(payload));
    expect(reads).toBe(1);
    expect((await pendingRows(t.dataSource)).map((row) => row.payload)).toEqual(['{"n":1}']);
    let seen: unknown;
    const spy = jest.spyOn(AnyPayloadEvent.prototype, 'execute').mockImplementation(async function (
      this: AnyPayloadEvent,
    ) {
      seen = this.getPayload();
    });
    expect(await t.workers.runWorker(run())).toMatchObject({ processed: 1 });
    spy.mockRestore();
    expect(seen).toEqual({ n: 1 });
  });

  it('keeps an own "__proto__" key of a payload as a key, as JSON does', async () => {
    await t.events.dispatch(new AnyPayloadEvent(JSON.parse('{"__proto__":{"admin":true},"n":1}')));
    expect((await pendingRows(t.dataSource)).map((row) => row.payload)).toEqual(['{"__proto__":{"admin":true},"n":1}']);
  });

  it('accepts JSON-safe payloads, with undefined object properties dropped as JSON does', async () => {
    await t.events.dispatch(new AnyPayloadEvent({ a: [1, 'two', true, null, { b: 2.5 }], skipped: undefined }));
    await t.events.dispatch(new AnyPayloadEvent(null));
    const rows = await pendingRows(t.dataSource);
    expect(rows.map((row) => row.payload)).toEqual(['{"a":[1,"two",true,null,{"b":2.5}]}', null]);
  });

  it('rejects dispatching a queued event class that is not registered, and stores nothing', async () => {
    await expect(t.events.dispatch(new UnregisteredEvent(null))).rejects.toThrow(UnknownEventError);
    await expect(t.events.dispatch(new UnregisteredEvent(null))).rejects.toThrow(
      'Unknown event "UnregisteredEvent": no event class with that name is registered',
    );
    expect(await pendingRows(t.dataSource)).toEqual([]);
  });

  it('moves a row whose event name is unknown to the failed store with that reason, without retrying it', async () => {
    await t.events.dispatch(new AnyPayloadEvent({ id: 1 }));
    await t.dataSource.query("UPDATE nestjs_workers SET event_name = 'RenamedLongAgoEvent'");
    expect(await t.workers.runWorker(run({ retries: 5 }))).toEqual({
      queueName: 'bad',
      processed: 0,
      failed: 1,
      retried: 0,
      cancelled: 0,
    });
    expect(await pendingRows(t.dataSource)).toEqual([]);
    const [failed] = await failedRows(t.dataSource);
    expect(failed).toMatchObject({ event_name: 'RenamedLongAgoEvent', payload: '{"id":1}', attempts: 1 });
    expect(String(failed!.error)).toContain('UnknownEventError: Unknown event "RenamedLongAgoEvent"');
  });

  it('moves a row whose payload no longer parses to the failed store, keeping the whole raw text', async () => {
    await t.events.dispatch(new AnyPayloadEvent({ id: 2 }));
    const raw = `{"id": 2, "note": "${'x'.repeat(5000)}", broken`;
    await t.dataSource.query('UPDATE nestjs_workers SET payload = ?', [raw]);
    expect(await t.workers.runWorker(run())).toEqual({
      queueName: 'bad',
      processed: 0,
      failed: 1,
      retried: 0,
      cancelled: 0,
    });
    expect(AnyPayloadEvent.runs).toBe(0);
    const [failed] = await failedRows(t.dataSource);
    expect(failed).toMatchObject({ event_name: 'AnyPayloadEvent', attempts: 1 });
    expect(String(failed!.error)).toContain('CorruptPayloadError: Stored payload of worker row');
    expect(String(failed!.error)).toContain('is not valid JSON: {"id": 2, "note": "xxx');
    // The failed row's payload holds the unparseable text as a JSON string, so nothing of it is lost.
    expect(JSON.parse(String(failed!.payload))).toBe(raw);
  });

  it.each([
    ['string', 'Event threw a non-Error value: "plain string"'],
    ['object', 'Event threw a non-Error value: {"code":42}'],
    ['undefined', 'Event threw a non-Error value: undefined'],
    ['number', 'Event threw a non-Error value: 7'],
  ] as const)('fails cleanly when an event throws a non-Error %s', async (kind, message) => {
    await t.events.dispatch(new ThrowsValueEvent({ kind }));
    expect(await t.workers.runWorker(run({ retries: 1 }))).toEqual({
      queueName: 'bad',
      processed: 0,
      failed: 1,
      retried: 0,
      cancelled: 0,
    });
    const [failed] = await failedRows(t.dataSource);
    expect(String(failed!.error)).toContain(`NonErrorThrownError: ${message}`);
    expect(logger.messages('error')).toEqual([expect.stringContaining(message)]);
  });

  it.each([
    [{ queueName: '' }, 'queueName', 'must be a non-empty string'],
    [{ retries: 0 }, 'retries', 'must be an integer ≥ 1 (got 0)'],
    [{ retries: 2.5 }, 'retries', 'must be an integer ≥ 1 (got 2.5)'],
    [{ runAfterSeconds: -1 }, 'runAfterSeconds', 'must be a finite number ≥ 0 (got -1)'],
    [{ concurrency: 0 }, 'concurrency', 'must be an integer ≥ 1 (got 0)'],
    // Issue 14 point 15: a misspelt option is refused, not ignored.
    [{ runAfterSeconds: 1e300 }, 'runAfterSeconds', 'must be at most 10000000000 (got 1e+300)'],
    [{ timeoutSeconds: 1e7 }, 'timeoutSeconds', 'must be at most 2147483.647 (got 10000000)'],
    [{ queueNme: 'x' }, 'queueNme', 'is not an option (known: queueName, retries, runAfterSeconds, runOnce,'],
    [{ queueName: 'q'.repeat(256) }, 'queueName', 'must be at most 255 characters (got 256)'],
    [{ queueName: 'bad\u0000' }, 'queueName', 'must not contain NUL'],
  ])('rejects runWorker options %j with an error naming the option', async (overrides, field, problem) => {
    const attempt = t.workers.runWorker(run(overrides as Partial<TEventWorkerOptions>));
    await expect(attempt).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
    await expect(t.workers.runWorker(run(overrides as Partial<TEventWorkerOptions>))).rejects.toThrow(
      `Invalid nestjs-workers option "${field}": ${problem}`,
    );
  });
});

describe('invalid module options stop startup', () => {
  it.each([
    [{ queus: {} }, 'queus', 'is not an option'],
    [{ queues: { mail: { retries: -1 } } }, 'queues["mail"].retries', 'must be an integer ≥ 1 (got -1)'],
    [
      { queues: { mail: { concurrency: 'four' } } },
      'queues["mail"].concurrency',
      'must be an integer ≥ 1 (got "four")',
    ],
    [{ queues: { mail: { retry: 3 } } }, 'queues["mail"].retry', 'is not an option'],
    [{ defaults: { pollIntervalMs: 0 } }, 'defaults.pollIntervalMs', 'must be an integer ≥ 10 (got 0)'],
    [
      { defaults: { runAfterSeconds: Number.NaN } },
      'defaults.runAfterSeconds',
      'must be a finite number ≥ 0 (got NaN)',
    ],
    [
      { database: { type: 'oracle' } },
      'database.type',
      'must be one of better-sqlite3, postgres, mysql, mariadb (got "oracle")',
    ],
    [{ database: { type: 'postgres' } }, 'database.url', 'is required for postgres (or give database.host)'],
    [
      { database: { type: 'mysql', url: 'mysql://db/app', schema: 'jobs' } },
      'database.schema',
      'is a PostgreSQL option (type is mysql)',
    ],
    [
      { database: { type: 'postgres', url: 'postgres://db/app', poolSize: 0 } },
      'database.poolSize',
      'must be an integer ≥ 1 (got 0)',
    ],
    [
      { database: { type: 'postgres', url: 'postgres://db/app', synchronise: true } },
      'database.synchronise',
      'is not an option',
    ],
    [{ database: { busyTimeoutMs: 5 }, dataSource: {} }, 'dataSource', 'cannot be combined with database'],
    [{ dataSource: { name: 'not a DataSource' } }, 'dataSource', 'must be a TypeORM DataSource'],
    [{ database: { database: '' } }, 'database.database', 'must be a non-empty string'],
    [{ events: 'EmailEvent' }, 'events', 'must be an array of event classes'],
    [{ events: [{}] }, 'events[0]', 'must be an event class'],
    [{ autoStart: 'yes' }, 'autoStart', 'must be true or false (got "yes")'],
    [{ leaseSeconds: 0 }, 'leaseSeconds', 'must be a finite number ≥ 1 (got 0)'],
    [{ heartbeatSeconds: 20 }, 'heartbeatSeconds', 'must be at most half of leaseSeconds (30), got 20'],
    [{ leaseSeconds: 2, heartbeatSeconds: 0 }, 'heartbeatSeconds', 'must be a finite number ≥ 0.05 (got 0)'],
    [{ shutdownGraceSeconds: -1 }, 'shutdownGraceSeconds', 'must be a finite number ≥ 0 (got -1)'],
    [{ logger: {} }, 'logger', 'must have a log() method'],
    // Issue 14 points 11-13, 17: names that could never be stored, payload limits, SQL in the schema.
    [
      { queues: { ['q'.repeat(300)]: {} } },
      `queues["${'q'.repeat(300)}"] (queue name)`,
      'must be at most 255 characters (got 300)',
    ],
    [{ queues: { 'mail\u0000': {} } }, 'queues["mail\\u0000"] (queue name)', 'must not contain NUL'],
    [{ queues: { 'mail\ud800': {} } }, 'queues["mail\\ud800"] (queue name)', 'must be well-formed Unicode'],
    [{ defaults: { runAfterSeconds: 1e300 } }, 'defaults.runAfterSeconds', 'must be at most 10000000000 (got 1e+300)'],
    [
      { queues: { mail: { backoff: { type: 'exponential', maxSeconds: 1e300 } } } },
      'queues["mail"].backoff.maxSeconds',
      'must be at most 10000000000 (got 1e+300)',
    ],
    // A Node timer holds at most 2^31 - 1 ms: longer ones fire after 1 ms (every event would time out at once).
    [
      { defaults: { timeoutSeconds: 30 * 86_400 } },
      'defaults.timeoutSeconds',
      'must be at most 2147483.647 (got 2592000)',
    ],
    [
      { defaults: { pollIntervalMs: 2 ** 31 } },
      'defaults.pollIntervalMs',
      'must be at most 2147483647 (got 2147483648)',
    ],
    [{ shutdownGraceSeconds: 1e9 }, 'shutdownGraceSeconds', 'must be at most 2147483.647 (got 1000000000)'],
    [{ leaseSeconds: 1e300 }, 'leaseSeconds', 'must be at most 10000000000 (got 1e+300)'],
    [{ leaseSeconds: 1e8 }, 'heartbeatSeconds', 'must be at most 2147483.647 (got 33333333.333333332)'],
    [{ maxPayloadBytes: 0 }, 'maxPayloadBytes', 'must be an integer ≥ 1 (got 0)'],
    [{ maxPayloadBytes: '1mb' }, 'maxPayloadBytes', 'must be an integer ≥ 1 (got "1mb")'],
    [{ maxPayloadBytes: 2 ** 31 }, 'maxPayloadBytes', `must be at most ${2 ** 30} (got ${2 ** 31})`],
    [
      { database: { type: 'postgres', url: 'postgres://db/app', schema: 'x"; DROP TABLE victim; --' } },
      'database.schema',
      'must be a plain PostgreSQL identifier',
    ],
    [
      { database: { type: 'postgres', url: 'postgres://db/app', schema: 's'.repeat(64) } },
      'database.schema',
      'must be a plain PostgreSQL identifier',
    ],
  ])('rejects %j naming %s', async (options, field, problem) => {
    const compile = () =>
      Test.createTestingModule({
        imports: [WorkerModule.forRoot(options as unknown as WorkerModuleOptions)],
      }).compile();
    await expect(compile()).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
    await expect(compile()).rejects.toThrow(`Invalid nestjs-workers option "${field}": ${problem}`);
  });
});

describe('invalid @QueueEvent() options stop startup', () => {
  const decorate = (queueName: unknown, options: unknown) => () => {
    // Decorating a class at run time is what defining it does when its module is imported.
    class BadlyConfiguredEvent extends BaseEvent<null> {
      async execute(): Promise<void> {}
    }
    QueueEvent(queueName as string, options as Parameters<typeof QueueEvent>[1])(BadlyConfiguredEvent);
  };

  it.each([
    ['', {}, 'queue name', 'must be a non-empty string (got "")'],
    ['mail', { retries: 0 }, 'options.retries', 'must be an integer ≥ 1 (got 0)'],
    ['mail', { retries: '3' }, 'options.retries', 'must be an integer ≥ 1 (got "3")'],
    ['mail', { runAfterSeconds: -5 }, 'options.runAfterSeconds', 'must be a finite number ≥ 0 (got -5)'],
    ['mail', { name: '' }, 'options.name', 'must be a non-empty string (got "")'],
    [
      'mail',
      { retry: 3 },
      'options.retry',
      'is not an option (known: name, retries, runAfterSeconds, backoff, timeoutSeconds, priority, keepCompleted, ' +
        'concurrencyKey, keyConcurrency)',
    ],
    ['mail', 'urgent', 'options', 'must be an object (got "urgent")'],
    ['q'.repeat(256), {}, 'queue name', 'must be at most 255 characters (got 256)'],
    ['mail\u0000', {}, 'queue name', 'must not contain NUL'],
    ['mail', { name: 'Event\udc00' }, 'options.name', 'must be well-formed Unicode'],
  ])('rejects @QueueEvent(%j, %j) naming the class and %s', (queueName, options, field, problem) => {
    expect(decorate(queueName, options)).toThrow(InvalidWorkerOptionsError);
    expect(decorate(queueName, options)).toThrow(
      `Invalid nestjs-workers option "@QueueEvent() on BadlyConfiguredEvent: ${field}": ${problem}`,
    );
  });
});
