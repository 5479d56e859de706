/**
 * The testing helpers (nestjs-workers/testing) on SQLite: RecordingEventService and its dispatch
 * assertions, overriding EventService in a Nest app, and drain()/drainAll().
 */
import { Body, Controller, Inject, Injectable, Module, Post } from '@nestjs/common';
import type { INestApplication } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import {
  BaseEvent,
  EventService,
  type IWorkerCreator,
  QueueEvent,
  UnknownEventError,
  UnserializablePayloadError,
  WORKER_DATA_SOURCE,
  WorkerModule,
} from '../lib/index.js';
import { DispatchAssertionError, drain, drainAll, RecordingEventService } from '../lib/testing/index.js';
import {
  createTestApp,
  failedRows,
  pendingRows,
  RecordingLogger,
  sleep,
  type TestApp,
  tempDatabase,
} from './support/test-app.js';

/** Events that actually ran (the recorder must run none). */
const executed: string[] = [];

@QueueEvent('testing-mail')
class TestingWelcomeEvent extends BaseEvent<{
  userId: string;
  tags?: string[];
  profile?: { plan: string; seats: number };
}> {
  async execute(): Promise<void> {
    executed.push(`welcome ${this.getPayload().userId}`);
  }
}

@QueueEvent('testing-mail')
class TestingAnyPayloadEvent extends BaseEvent<unknown> {
  async execute(): Promise<void> {
    executed.push('any payload');
  }
}

/** No queue: the real EventService runs it at once. */
class TestingSyncEvent extends BaseEvent<{ note: string }> {
  async execute(): Promise<void> {
    executed.push(`sync ${this.getPayload().note}`);
  }
}

/** The seed's style: a queue from getQueueName() only, so it is registered only when listed in `events`. */
class TestingLegacyEvent extends BaseEvent<{ n: number }> {
  override getQueueName(): string {
    return 'testing-legacy';
  }
  async execute(): Promise<void> {
    executed.push(`legacy ${this.getPayload().n}`);
  }
}

const drainRuns = { attempts: new Map<string, number>(), done: [] as string[] };

/** Fails its first `failTimes` attempts; dispatches a follow-up event `next` to its own queue. */
@QueueEvent('testing-drain')
class TestingDrainEvent extends BaseEvent<{ id: string; failTimes?: number; next?: string }> {
  @Inject(EventService) private readonly events!: EventService;

  async execute(): Promise<void> {
    const { id, failTimes = 0, next } = this.getPayload();
    const attempt = (drainRuns.attempts.get(id) ?? 0) + 1;
    drainRuns.attempts.set(id, attempt);
    if (attempt <= failTimes) throw new Error(`${id} fails attempt ${attempt}`);
    drainRuns.done.push(id);
    if (next) await this.events.dispatch(new TestingDrainEvent({ id: next }));
  }
}

const parallelRuns = { active: 0, maxActive: 0, done: [] as string[] };

/** Takes 40 ms; dispatches TestingDrainEvent `then` (another queue) when given. */
@QueueEvent('testing-parallel')
class TestingParallelEvent extends BaseEvent<{ id: string; then?: string }> {
  @Inject(EventService) private readonly events!: EventService;

  async execute(): Promise<void> {
    parallelRuns.active++;
    parallelRuns.maxActive = Math.max(parallelRuns.maxActive, parallelRuns.active);
    await sleep(40);
    parallelRuns.active--;
    parallelRuns.done.push(this.getPayload().id);
    const then = this.getPayload().then;
    if (then) await this.events.dispatch(new TestingDrainEvent({ id: then }));
  }
}

@QueueEvent('testing-delayed')
class TestingDelayedRetryEvent extends BaseEvent<{ id: string }> {
  async execute(): Promise<void> {
    throw new Error(`${this.getPayload().id} always fails`);
  }
}

/** The application code under test: a provider and a controller that inject EventService. */
@Injectable()
class TestingSignupService {
  constructor(readonly events: EventService) {}

  async signUp(userId: string): Promise<string | undefined> {
    return this.events.dispatch(new TestingWelcomeEvent({ userId, tags: ['new'] }));
  }
}

@Controller('testing-signup')
class TestingSignupController {
  constructor(
    private readonly signups: TestingSignupService,
    readonly events: EventService,
  ) {}

  @Post()
  async create(@Body() body: { userId: string }): Promise<{ id: string | undefined }> {
    const id = await this.signups.signUp(body.userId);
    await this.events.dispatch(new TestingSyncEvent({ note: `signed up ${body.userId}` }));
    return { id };
  }
}

@Module({ controllers: [TestingSignupController], providers: [TestingSignupService] })
class TestingSignupModule {}

/** The DispatchAssertionError `assertion` throws. */
function assertionError(assertion: () => unknown): DispatchAssertionError {
  try {
    assertion();
  } catch (error) {
    expect(error).toBeInstanceOf(DispatchAssertionError);
    expect(error).toBeInstanceOf(Error);
    return error as DispatchAssertionError;
  }
  throw new Error('the assertion did not throw');
}

beforeEach(() => {
  executed.length = 0;
  drainRuns.attempts.clear();
  drainRuns.done.length = 0;
  parallelRuns.active = 0;
  parallelRuns.maxActive = 0;
  parallelRuns.done.length = 0;
});

describe('RecordingEventService', () => {
  it('records queued and unqueued dispatches with fake ids, and stores or runs nothing', async () => {
    const storingCreator: IWorkerCreator = {
      createWorkerModel: () => {
        throw new Error('the recorder must not use a real creator');
      },
      createFailedWorkerModel: () => {
        throw new Error('the recorder must not use a real creator');
      },
    };
    const recorder = new RecordingEventService({ workerCreator: storingCreator });
    recorder.setWorkerCreator(storingCreator);

    await expect(recorder.dispatch(new TestingWelcomeEvent({ userId: 'u1' }))).resolves.toBe('recorded-1');
    await expect(recorder.dispatch(new TestingWelcomeEvent({ userId: 'u2' }))).resolves.toBe('recorded-2');
    await expect(recorder.dispatch(new TestingSyncEvent({ note: 'hello' }))).resolves.toBeUndefined();

    expect(executed).toEqual([]);
    expect(recorder.dispatched(TestingWelcomeEvent).map((event) => event.getPayload().userId)).toEqual(['u1', 'u2']);
    expect(recorder.dispatched(TestingSyncEvent)).toHaveLength(1);
    expect(recorder.dispatched(TestingLegacyEvent)).toEqual([]);
    expect(
      recorder.dispatches.map(({ id, queueName, eventName, options }) => ({ id, queueName, eventName, options })),
    ).toEqual([
      { id: 'recorded-1', queueName: 'testing-mail', eventName: 'TestingWelcomeEvent', options: {} },
      { id: 'recorded-2', queueName: 'testing-mail', eventName: 'TestingWelcomeEvent', options: {} },
      { id: undefined, queueName: undefined, eventName: 'TestingSyncEvent', options: {} },
    ]);
  });

  it('expectDispatched accepts partial payloads, predicates and counts', async () => {
    const recorder = new RecordingEventService();
    await recorder.dispatch(
      new TestingWelcomeEvent({ userId: 'u1', tags: ['a', 'b'], profile: { plan: 'pro', seats: 3 } }),
    );
    await recorder.dispatch(new TestingWelcomeEvent({ userId: 'u2' }));
    await recorder.dispatch(new TestingSyncEvent({ note: 'n' }));

    expect(recorder.expectDispatched(TestingWelcomeEvent)).toHaveLength(2);
    expect(recorder.expectDispatched(TestingWelcomeEvent, undefined, 2)).toHaveLength(2);
    const [matched] = recorder.expectDispatched(TestingWelcomeEvent, { userId: 'u1' }, 1);
    expect(matched.getPayload().profile).toEqual({ plan: 'pro', seats: 3 });
    recorder.expectDispatched(TestingWelcomeEvent, { profile: { plan: 'pro' } });
    recorder.expectDispatched(TestingWelcomeEvent, { tags: ['a', 'b'] });
    recorder.expectDispatched(TestingWelcomeEvent, {}, 2);
    recorder.expectDispatched(TestingWelcomeEvent, (payload) => payload.userId.startsWith('u'), 2);
    recorder.expectDispatched(TestingSyncEvent, { note: 'n' }, 1);
    recorder.expectDispatched(TestingLegacyEvent, undefined, 0);

    recorder.expectNotDispatched(TestingLegacyEvent);
    recorder.expectNotDispatched(TestingWelcomeEvent, { userId: 'u3' });
    recorder.expectNotDispatched(TestingWelcomeEvent, { tags: ['a'] }); // arrays match element by element, whole length
    recorder.expectNotDispatched(TestingWelcomeEvent, { profile: { plan: 'free' } });
    recorder.expectNotDispatched(TestingWelcomeEvent, (payload) => payload.userId === 'nobody');
  });

  it('expectDispatched throws a DispatchAssertionError naming the class, the matcher and what was dispatched', async () => {
    const recorder = new RecordingEventService();
    expect(assertionError(() => recorder.expectDispatched(TestingWelcomeEvent)).message).toBe(
      'Expected TestingWelcomeEvent to be dispatched at least once, but it was dispatched 0 times.\nNothing was dispatched.',
    );

    await recorder.dispatch(new TestingWelcomeEvent({ userId: 'u1' }));
    await recorder.dispatch(new TestingWelcomeEvent({ userId: 'u2' }));
    await recorder.dispatch(new TestingSyncEvent({ note: 'n' }));
    const list =
      'Dispatched (3):\n' +
      '  1. TestingWelcomeEvent on queue "testing-mail" as recorded-1, payload {"userId":"u1"}\n' +
      '  2. TestingWelcomeEvent on queue "testing-mail" as recorded-2, payload {"userId":"u2"}\n' +
      '  3. TestingSyncEvent without a queue, payload {"note":"n"}';

    // Wrong payload.
    const wrongPayload = assertionError(() => recorder.expectDispatched(TestingWelcomeEvent, { userId: 'nobody' }));
    expect(wrongPayload.name).toBe('DispatchAssertionError');
    expect(wrongPayload.message).toBe(
      'Expected TestingWelcomeEvent to be dispatched at least once with a payload matching {"userId":"nobody"}, ' +
        `but it was dispatched 0 times with such a payload (2 times in all).\n${list}`,
    );

    // Wrong count, with and without a matcher.
    expect(assertionError(() => recorder.expectDispatched(TestingWelcomeEvent, undefined, 3)).message).toBe(
      `Expected TestingWelcomeEvent to be dispatched 3 times, but it was dispatched 2 times.\n${list}`,
    );
    expect(assertionError(() => recorder.expectDispatched(TestingWelcomeEvent, { userId: 'u1' }, 2)).message).toContain(
      'to be dispatched 2 times with a payload matching {"userId":"u1"}, but it was dispatched once with such a payload (2 times in all)',
    );

    // Not dispatched at all, while other events were.
    expect(assertionError(() => recorder.expectDispatched(TestingLegacyEvent)).message).toBe(
      `Expected TestingLegacyEvent to be dispatched at least once, but it was dispatched 0 times.\n${list}`,
    );

    // A predicate is shown by its source.
    const predicate = assertionError(() =>
      recorder.expectDispatched(TestingWelcomeEvent, (payload) => payload.userId === 'u9'),
    );
    expect(predicate.message).toMatch(
      /^Expected TestingWelcomeEvent to be dispatched at least once with a payload matching the predicate .*u9/,
    );
    expect(predicate.message).toContain(list);

    expect(() => recorder.expectDispatched(TestingWelcomeEvent, undefined, -1)).toThrow(TypeError);
  });

  it('expectNotDispatched throws when a matching event was dispatched', async () => {
    const recorder = new RecordingEventService();
    await recorder.dispatch(new TestingWelcomeEvent({ userId: 'u1', tags: ['x'] }));

    expect(assertionError(() => recorder.expectNotDispatched(TestingWelcomeEvent)).message).toBe(
      'Expected TestingWelcomeEvent not to be dispatched, but it was dispatched once.\n' +
        'Dispatched (1):\n  1. TestingWelcomeEvent on queue "testing-mail" as recorded-1, payload {"userId":"u1","tags":["x"]}',
    );
    expect(assertionError(() => recorder.expectNotDispatched(TestingWelcomeEvent, { tags: ['x'] })).message).toContain(
      'Expected TestingWelcomeEvent not to be dispatched with a payload matching {"tags":["x"]}, but it was dispatched once with such a payload.',
    );
    expect(() => recorder.expectNotDispatched(TestingWelcomeEvent, (payload) => payload.userId === 'u1')).toThrow(
      DispatchAssertionError,
    );
    expect(assertionError(() => recorder.expectDispatched(TestingWelcomeEvent, { userId: 'u2' })).message).toContain(
      'but it was dispatched 0 times with such a payload (1 time in all).',
    );
  });

  it('clear() forgets every dispatch and starts the ids again', async () => {
    const recorder = new RecordingEventService();
    await recorder.dispatch(new TestingWelcomeEvent({ userId: 'u1' }));
    recorder.clear();
    expect(recorder.dispatches).toEqual([]);
    recorder.expectNotDispatched(TestingWelcomeEvent);
    await expect(recorder.dispatch(new TestingWelcomeEvent({ userId: 'u2' }))).resolves.toBe('recorded-1');
  });

  it('rejects unserializable payloads as the real dispatch does, and records nothing', async () => {
    const recorder = new RecordingEventService();
    const dated = recorder.dispatch(new TestingAnyPayloadEvent({ at: new Date(0) }));
    await expect(dated).rejects.toBeInstanceOf(UnserializablePayloadError);
    await expect(dated).rejects.toThrow('Cannot dispatch TestingAnyPayloadEvent: payload.at is a Date instance');
    await expect(recorder.dispatch(new TestingAnyPayloadEvent({ send: () => undefined }))).rejects.toThrow(
      'payload.send is a function',
    );
    await expect(recorder.dispatch(new TestingAnyPayloadEvent({ big: 1n }))).rejects.toBeInstanceOf(
      UnserializablePayloadError,
    );
    expect(recorder.dispatches).toEqual([]);
    // No id was used up by the rejected dispatches.
    await expect(recorder.dispatch(new TestingAnyPayloadEvent({ ok: true }))).resolves.toBe('recorded-1');
  });

  it('rejects a queued event class that is not registered, and accepts it once listed in events', async () => {
    const recorder = new RecordingEventService();
    const unknown = recorder.dispatch(new TestingLegacyEvent({ n: 1 }));
    await expect(unknown).rejects.toBeInstanceOf(UnknownEventError);
    await expect(unknown).rejects.toThrow('Unknown event "TestingLegacyEvent"');
    expect(recorder.dispatches).toEqual([]);

    const withEvents = new RecordingEventService({ events: [TestingLegacyEvent] });
    await expect(withEvents.dispatch(new TestingLegacyEvent({ n: 2 }))).resolves.toBe('recorded-1');
    withEvents.expectDispatched(TestingLegacyEvent, { n: 2 }, 1);
    expect(withEvents.dispatchesOf(TestingLegacyEvent)[0]?.queueName).toBe('testing-legacy');
    expect(executed).toEqual([]);
  });

  describe('overriding EventService in a Nest application', () => {
    let app: INestApplication | undefined;
    let cleanup: (() => void) | undefined;

    afterEach(async () => {
      await app?.close();
      app = undefined;
      cleanup?.();
      cleanup = undefined;
    });

    it('gives the controllers and providers that inject EventService the recorder, and stores nothing', async () => {
      const database = tempDatabase();
      cleanup = database.cleanup;
      const logger = new RecordingLogger();
      const recorder = new RecordingEventService();
      const moduleRef = await Test.createTestingModule({
        imports: [
          WorkerModule.forRoot({ autoStart: false, database: { database: database.file }, logger }),
          TestingSignupModule,
        ],
      })
        .overrideProvider(EventService)
        .useValue(recorder)
        .compile();
      app = moduleRef.createNestApplication({ logger: false });
      await app.init();

      expect(app.get(EventService)).toBe(recorder);
      expect(app.get(TestingSignupService).events).toBe(recorder);
      expect(app.get(TestingSignupController).events).toBe(recorder);

      const response = await request(app.getHttpServer()).post('/testing-signup').send({ userId: 'u7' }).expect(201);
      expect(response.body).toEqual({ id: 'recorded-1' });
      recorder.expectDispatched(TestingWelcomeEvent, { userId: 'u7', tags: ['new'] }, 1);
      recorder.expectDispatched(TestingSyncEvent, { note: 'signed up u7' }, 1);
      expect(executed).toEqual([]);

      // A dispatch inside a transaction is recorded with its manager, and writes nothing either.
      const dataSource = app.get<DataSource>(WORKER_DATA_SOURCE);
      await dataSource.transaction(async (manager) => {
        await expect(recorder.dispatch(new TestingWelcomeEvent({ userId: 'u8' }), { manager })).resolves.toBe(
          'recorded-2',
        );
      });
      expect(recorder.dispatchesOf(TestingWelcomeEvent)[1]?.options.manager).toBeDefined();

      expect(await pendingRows(dataSource)).toEqual([]);
      await expect(drain(app, 'testing-mail')).resolves.toEqual({
        queueName: 'testing-mail',
        processed: 0,
        failed: 0,
        retried: 0,
        cancelled: 0,
      });
      // The recorder runs no event, so the events' @Inject() properties raise no startup warnings.
      expect(logger.messages('warn')).toEqual([]);
    });
  });
});

describe('drain() and drainAll()', () => {
  let testApp: TestApp | undefined;
  let logger: RecordingLogger;

  async function start(
    queues: Record<string, { retries?: number; runAfterSeconds?: number; concurrency?: number }>,
  ): Promise<TestApp> {
    logger = new RecordingLogger();
    testApp = await createTestApp({ queues, logger });
    return testApp;
  }

  afterEach(async () => {
    await testApp?.close();
    testApp = undefined;
  });

  it('runs every due event, retries with runAfterSeconds 0 and events dispatched meanwhile included, until the queue is empty', async () => {
    const { app, events, dataSource } = await start({ 'testing-drain': { retries: 3, runAfterSeconds: 0 } });
    await events.dispatch(new TestingDrainEvent({ id: 'a' }));
    await events.dispatch(new TestingDrainEvent({ id: 'b', failTimes: 2 }));
    await events.dispatch(new TestingDrainEvent({ id: 'c', next: 'd' }));

    await expect(drain(app, 'testing-drain')).resolves.toEqual({
      queueName: 'testing-drain',
      processed: 4,
      failed: 0,
      retried: 2,
      cancelled: 0,
    });
    expect([...drainRuns.done].sort()).toEqual(['a', 'b', 'c', 'd']);
    expect(drainRuns.attempts.get('b')).toBe(3);
    expect(await pendingRows(dataSource)).toEqual([]);
    expect(await failedRows(dataSource)).toEqual([]);
    await expect(drain(app, 'testing-drain')).resolves.toEqual({
      queueName: 'testing-drain',
      processed: 0,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
  });

  it("reports failures once the queue's configured attempts are used up", async () => {
    const { app, events, dataSource } = await start({ 'testing-drain': { retries: 2, runAfterSeconds: 0 } });
    await events.dispatch(new TestingDrainEvent({ id: 'doomed', failTimes: 99 }));
    await events.dispatch(new TestingDrainEvent({ id: 'fine' }));

    await expect(drain(app, 'testing-drain')).resolves.toEqual({
      queueName: 'testing-drain',
      processed: 1,
      failed: 1,
      retried: 1,
      cancelled: 0,
    });
    expect(drainRuns.attempts.get('doomed')).toBe(2);
    expect(await pendingRows(dataSource)).toEqual([]);
    const failed = await failedRows(dataSource);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ event_name: 'TestingDrainEvent', attempts: 2 });
    expect(String(failed[0]?.error)).toContain('doomed fails attempt 2');
  });

  it('does not run retries delayed by runAfterSeconds > 0: they are not due yet and stay pending', async () => {
    const { app, events, dataSource } = await start({ 'testing-delayed': { retries: 3, runAfterSeconds: 60 } });
    await events.dispatch(new TestingDelayedRetryEvent({ id: 'later' }));

    await expect(drain(app, 'testing-delayed')).resolves.toEqual({
      queueName: 'testing-delayed',
      processed: 0,
      failed: 0,
      retried: 1,
      cancelled: 0,
    });
    const pending = await pendingRows(dataSource);
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ attempts: 1 });
    await expect(drain(app, 'testing-delayed')).resolves.toEqual({
      queueName: 'testing-delayed',
      processed: 0,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
  });

  it("runs events with the queue's configured concurrency", async () => {
    const { app, events } = await start({ 'testing-parallel': { concurrency: 3 } });
    for (let index = 0; index < 6; index++) await events.dispatch(new TestingParallelEvent({ id: `p${index}` }));

    await expect(drain(app, 'testing-parallel')).resolves.toEqual({
      queueName: 'testing-parallel',
      processed: 6,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    expect(parallelRuns.maxActive).toBe(3);
    expect(parallelRuns.done).toHaveLength(6);
  });

  it('drainAll drains every polled queue, following events dispatched to queues already drained', async () => {
    // testing-drain comes before testing-parallel, whose events dispatch to testing-drain.
    const { app, events, dataSource } = await start({
      'testing-drain': { retries: 3, runAfterSeconds: 0 },
      'testing-parallel': { concurrency: 2 },
      'testing-empty': {},
    });
    await events.dispatch(new TestingDrainEvent({ id: 'd1', failTimes: 1 }));
    await events.dispatch(new TestingParallelEvent({ id: 'p1', then: 'd2' }));
    await events.dispatch(new TestingParallelEvent({ id: 'p2' }));
    await events.dispatch(new TestingWelcomeEvent({ userId: 'w1' }));

    const results = await drainAll(app);
    const byQueue = new Map(results.map((result) => [result.queueName, result]));
    expect(results.slice(0, 3).map((result) => result.queueName)).toEqual([
      'testing-drain',
      'testing-parallel',
      'testing-empty',
    ]);
    expect(byQueue.get('testing-drain')).toEqual({
      queueName: 'testing-drain',
      processed: 2,
      failed: 0,
      retried: 1,
      cancelled: 0,
    });
    expect(byQueue.get('testing-parallel')).toEqual({
      queueName: 'testing-parallel',
      processed: 2,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    expect(byQueue.get('testing-mail')).toEqual({
      queueName: 'testing-mail',
      processed: 1,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    expect(byQueue.get('testing-empty')).toEqual({
      queueName: 'testing-empty',
      processed: 0,
      failed: 0,
      retried: 0,
      cancelled: 0,
    });
    expect(byQueue.has('testing-delayed')).toBe(true);
    expect(new Set(results.map((result) => result.queueName)).size).toBe(results.length);
    expect([...drainRuns.done].sort()).toEqual(['d1', 'd2']);
    expect(executed).toEqual(['welcome w1']);
    expect(await pendingRows(dataSource)).toEqual([]);
  });

  it('says what is missing when the application has no WorkerModule', async () => {
    const moduleRef = await Test.createTestingModule({ providers: [] }).compile();
    await expect(drain(moduleRef, 'testing-drain')).rejects.toThrow(
      'drain() needs an application (or testing module) that imports WorkerModule',
    );
    await expect(drainAll(moduleRef)).rejects.toThrow('drainAll() needs an application');
    await moduleRef.close();
  });
});
