/**
 * Per-event job control on every database: backoff (fixed, exponential with cap and jitter,
 * custom), delayed dispatch (delaySeconds, runAt), timeouts through the AbortSignal, and bad input.
 */
import { Test } from '@nestjs/testing';
import {
  BaseEvent,
  EventTimeoutError,
  InvalidWorkerOptionsError,
  QueueEvent,
  WorkerModule,
  type WorkerModuleOptions,
} from '../lib/index.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, pendingRows, RecordingLogger, runOncePass, type TestApp } from './support/test-app.js';

@QueueEvent('control-backoff', { retries: 5 })
class AlwaysFailingEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    throw new Error('still down');
  }
}

@QueueEvent('control-class-backoff', {
  retries: 5,
  runAfterSeconds: 7,
  backoff: { type: 'exponential', maxSeconds: 20 },
})
class ClassBackoffEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    throw new Error('class policy');
  }
}

const signals: { aborted: boolean; reason: unknown }[] = [];

@QueueEvent('control-timeout', { retries: 2, timeoutSeconds: 0.2 })
class SlowEvent extends BaseEvent<{ ms: number }> {
  async execute(signal?: AbortSignal): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, this.getPayload().ms));
    signals.push({ aborted: signal?.aborted ?? false, reason: signal?.reason });
  }
}

@QueueEvent('control-delay')
class LaterEvent extends BaseEvent<{ n: number }> {
  static ran: number[] = [];
  async execute(): Promise<void> {
    LaterEvent.ran.push(this.getPayload().n);
  }
}

const EVENTS = [AlwaysFailingEvent, ClassBackoffEvent, SlowEvent, LaterEvent];

describe.each(testDatabases())('job control ($name)', (database) => {
  let t: TestApp;
  let logger: RecordingLogger;

  beforeEach(async () => {
    logger = new RecordingLogger();
    signals.length = 0;
    LaterEvent.ran = [];
    t = await createTestApp({ events: EVENTS, logger }, {}, database);
  });

  afterEach(async () => {
    await t.close();
  });

  /** Runs one attempt of the only row of `queueName` and returns the delay it got until its next attempt (s). */
  async function attemptAndDelay(queueName: string, options: Parameters<typeof runOncePass>[1] = {}): Promise<number> {
    await t.dataSource.query('UPDATE nestjs_workers SET available_at = 1');
    const before = Date.now();
    await t.workers.runWorker(runOncePass(queueName, options));
    const [row] = await pendingRows(t.dataSource);
    return (Number(row!.available_at) - before) / 1000;
  }

  it('keeps the fixed delay by default and doubles it per attempt with exponential backoff, up to maxSeconds', async () => {
    await t.events.dispatch(new AlwaysFailingEvent(null));
    expect(await attemptAndDelay('control-backoff', { retries: 5, runAfterSeconds: 10 })).toBeCloseTo(10, 0);
    expect(await attemptAndDelay('control-backoff', { retries: 5, runAfterSeconds: 10 })).toBeCloseTo(10, 0);
    const exponential = { retries: 5, runAfterSeconds: 10, backoff: { type: 'exponential' as const, maxSeconds: 50 } };
    // Attempts 3 and 4 fail: 10 · 2² = 40, then 10 · 2³ = 80 capped at 50.
    expect(await attemptAndDelay('control-backoff', exponential)).toBeCloseTo(40, 0);
    expect(await attemptAndDelay('control-backoff', exponential)).toBeCloseTo(50, 0);
  });

  it('spreads exponential delays with jitter between half the delay and the whole of it', async () => {
    await t.events.dispatch(new AlwaysFailingEvent(null));
    const delay = await attemptAndDelay('control-backoff', {
      retries: 5,
      runAfterSeconds: 100,
      backoff: { type: 'exponential', jitter: true },
    });
    expect(delay).toBeGreaterThanOrEqual(49.9);
    expect(delay).toBeLessThanOrEqual(100.1);
  });

  it('asks a custom backoff function with the attempt and the error, and falls back to runAfterSeconds when it misbehaves', async () => {
    await t.events.dispatch(new AlwaysFailingEvent(null));
    const calls: string[] = [];
    const custom = (attempt: number, error: Error) => (calls.push(`${attempt}: ${error.message}`), attempt * 3);
    expect(await attemptAndDelay('control-backoff', { retries: 5, runAfterSeconds: 1, backoff: custom })).toBeCloseTo(
      3,
      0,
    );
    expect(await attemptAndDelay('control-backoff', { retries: 5, runAfterSeconds: 1, backoff: custom })).toBeCloseTo(
      6,
      0,
    );
    expect(calls).toEqual(['1: still down', '2: still down']);
    expect(
      await attemptAndDelay('control-backoff', { retries: 5, runAfterSeconds: 4, backoff: () => Number.NaN }),
    ).toBeCloseTo(4, 0);
    expect(logger.messages('error')).toContain(
      'The backoff function of AlwaysFailingEvent returned NaN, not a number of seconds ≥ 0; retrying after runAfterSeconds instead',
    );
    // Issue 14 point 13: a due time 1e300 s out is no Date; the row would be neither retried nor moved.
    expect(
      await attemptAndDelay('control-backoff', { retries: 5, runAfterSeconds: 2, backoff: () => 1e300 }),
    ).toBeCloseTo(2, 0);
    expect(logger.messages('error')).toContain(
      'The backoff function of AlwaysFailingEvent returned 1e+300, more than the longest delay (10000000000 s); retrying after runAfterSeconds instead',
    );
  });

  it("lets an event class's backoff win over the run's", async () => {
    await t.events.dispatch(new ClassBackoffEvent(null));
    expect(await attemptAndDelay('control-class-backoff', { retries: 5, runAfterSeconds: 1 })).toBeCloseTo(7, 0);
    expect(await attemptAndDelay('control-class-backoff', { retries: 5, runAfterSeconds: 1 })).toBeCloseTo(14, 0);
    expect(await attemptAndDelay('control-class-backoff', { retries: 5, runAfterSeconds: 1 })).toBeCloseTo(20, 0);
  });

  it('holds a dispatch with delaySeconds or a future runAt until then; a past runAt is due at once', async () => {
    const before = Date.now();
    await t.events.dispatch(new LaterEvent({ n: 1 }), { delaySeconds: 60 });
    await t.events.dispatch(new LaterEvent({ n: 2 }), { runAt: new Date(before + 3_600_000) });
    await t.events.dispatch(new LaterEvent({ n: 3 }), { runAt: new Date(before - 1000) });
    expect(await t.workers.runWorker(runOncePass('control-delay'))).toMatchObject({ processed: 1 });
    expect(LaterEvent.ran).toEqual([3]);
    const [later, latest] = await pendingRows(t.dataSource);
    expect(Number(later!.available_at) - before).toBeGreaterThanOrEqual(60_000);
    expect(Number(later!.available_at) - before).toBeLessThan(61_000);
    expect(Number(latest!.available_at)).toBe(before + 3_600_000);
    expect((await t.workers.getQueueStatistics(['control-delay']))[0]).toMatchObject({
      pending: 2,
      delayed: 2,
      due: 0,
    });

    // Due by a second: the pass starts on the database's clock, whose estimate here may trail this
    // process's clock by a few milliseconds (MariaDB's now is read at millisecond precision).
    await t.dataSource.query(`UPDATE nestjs_workers SET available_at = ${Date.now() - 1000}`);
    expect(await t.workers.runWorker(runOncePass('control-delay'))).toMatchObject({ processed: 2 });
  });

  it('rejects bad delays naming the option, and stores nothing', async () => {
    const event = new LaterEvent({ n: 9 });
    await expect(t.events.dispatch(event, { delaySeconds: -1 })).rejects.toThrow(
      '"delaySeconds": must be a finite number ≥ 0 (got -1)',
    );
    await expect(t.events.dispatch(event, { delaySeconds: 'soon' as never })).rejects.toThrow(
      '"delaySeconds": must be a finite number ≥ 0 (got "soon")',
    );
    await expect(t.events.dispatch(event, { delaySeconds: Number.NaN })).rejects.toBeInstanceOf(
      InvalidWorkerOptionsError,
    );
    await expect(t.events.dispatch(event, { runAt: new Date('tomorrow') })).rejects.toThrow(
      '"runAt": must be a valid Date (got Invalid Date)',
    );
    await expect(t.events.dispatch(event, { runAt: '2030-01-01' as never })).rejects.toThrow(
      '"runAt": must be a valid Date (got "2030-01-01")',
    );
    await expect(t.events.dispatch(event, { delaySeconds: 5, runAt: new Date() })).rejects.toThrow(
      '"delaySeconds": cannot be combined with runAt',
    );
    await expect(t.events.dispatch(event, { delay: 5 } as never)).rejects.toThrow('"delay": is not an option');
    expect(await pendingRows(t.dataSource)).toEqual([]);
  });

  it('fails an attempt that overruns timeoutSeconds with EventTimeoutError, aborts its signal, and retries it', async () => {
    await t.events.dispatch(new SlowEvent({ ms: 600 }));
    const result = await t.workers.runWorker(runOncePass('control-timeout'));
    expect(result).toMatchObject({ processed: 0, retried: 1 });
    const [row] = await pendingRows(t.dataSource);
    expect(String(row!.error)).toMatch(/^EventTimeoutError: SlowEvent did not finish within its timeout of 0.2 s/);
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The event's own code saw the abort when it looked at its signal.
    expect(signals).toEqual([{ aborted: true, reason: expect.any(EventTimeoutError) }]);

    await t.events.dispatch(new SlowEvent({ ms: 10 }));
    await t.dataSource.query('DELETE FROM nestjs_workers WHERE attempts > 0');
    expect(await t.workers.runWorker(runOncePass('control-timeout'))).toMatchObject({ processed: 1 });
    expect(signals[1]).toEqual({ aborted: false, reason: undefined });
  });
});

describe('job control options at startup', () => {
  it.each([
    [{ queues: { q: { backoff: 'linear' } } }, 'queues["q"].backoff', 'must be "fixed", "exponential"'],
    [
      { queues: { q: { backoff: { type: 'exponential', maxSeconds: -1 } } } },
      'queues["q"].backoff.maxSeconds',
      'must be a finite number ≥ 0 (got -1)',
    ],
    [
      { queues: { q: { backoff: { type: 'exponential', jitter: 'yes' } } } },
      'queues["q"].backoff.jitter',
      'must be true or false',
    ],
    [
      { queues: { q: { backoff: { type: 'random' } } } },
      'queues["q"].backoff.type',
      'must be "fixed" or "exponential" (got "random")',
    ],
    [{ defaults: { timeoutSeconds: 0 } }, 'defaults.timeoutSeconds', 'must be a finite number ≥ 0.001 (got 0)'],
  ])('rejects %j naming %s', async (options, field, problem) => {
    const compile = () =>
      Test.createTestingModule({
        imports: [WorkerModule.forRoot(options as unknown as WorkerModuleOptions)],
      }).compile();
    await expect(compile()).rejects.toThrow(`Invalid nestjs-workers option "${field}": ${problem}`);
  });

  it('rejects a bad backoff on @QueueEvent() when the class is defined', () => {
    expect(() =>
      QueueEvent('q', { backoff: 'sometimes' as never })(
        class BadBackoffEvent extends BaseEvent<null> {
          async execute(): Promise<void> {}
        },
      ),
    ).toThrow('Invalid nestjs-workers option "@QueueEvent() on BadBackoffEvent: options.backoff": must be "fixed"');
  });
});
