/**
 * Flow-control options (issue 17, point 8): globalConcurrency, keyConcurrency, rateLimit, keyRateLimit
 * and the module's rateLimits are checked at startup (forRoot and forRootAsync, queues and defaults),
 * each bad value stopping it with an InvalidWorkerOptionsError that names the option; valid ones
 * become the limits a run's claims respect, inline rate limits a limiter of their queue's own. Pure
 * option validation: SQLite is enough (startup fails before any database is used).
 */
import { Test } from '@nestjs/testing';
import {
  BaseEvent,
  EventService,
  InvalidWorkerOptionsError,
  QueueEvent,
  WorkerModule,
  type WorkerModuleOptions,
} from '../lib/index.js';
import { claimFlowLimits } from '../lib/processing/run-options.js';
import { resolveWorkerConfig } from '../lib/worker.config.js';
import { DEFAULT_START_GRACE_MS } from '../lib/worker.defaults.js';
import { tempDatabase } from './support/test-app.js';

const database = tempDatabase();
afterAll(() => database.cleanup());

function compile(options: WorkerModuleOptions) {
  return Test.createTestingModule({
    imports: [WorkerModule.forRoot({ autoStart: false, database: { database: database.file }, ...options })],
  }).compile();
}

const partner = (options: unknown): WorkerModuleOptions => ({ queues: { partner: options } }) as WorkerModuleOptions;
const limiters = (rateLimits: unknown): WorkerModuleOptions => ({ rateLimits }) as WorkerModuleOptions;

describe('bad flow-control options stop startup, naming the option', () => {
  it.each<[string, WorkerModuleOptions, string, string]>([
    [
      'globalConcurrency 0',
      partner({ globalConcurrency: 0 }),
      'queues["partner"].globalConcurrency',
      'must be a positive integer (got 0)',
    ],
    [
      'globalConcurrency -2',
      partner({ globalConcurrency: -2 }),
      'queues["partner"].globalConcurrency',
      'must be a positive integer (got -2)',
    ],
    [
      'globalConcurrency 1.5',
      partner({ globalConcurrency: 1.5 }),
      'queues["partner"].globalConcurrency',
      'must be a positive integer (got 1.5)',
    ],
    [
      'globalConcurrency "3"',
      partner({ globalConcurrency: '3' }),
      'queues["partner"].globalConcurrency',
      'must be a positive integer (got "3")',
    ],
    [
      'globalConcurrency NaN',
      partner({ globalConcurrency: NaN }),
      'queues["partner"].globalConcurrency',
      'must be a positive integer (got NaN)',
    ],
    [
      'globalConcurrency Infinity',
      partner({ globalConcurrency: Infinity }),
      'queues["partner"].globalConcurrency',
      'must be a positive integer (got Infinity)',
    ],
    [
      'globalConcurrency null',
      partner({ globalConcurrency: null }),
      'queues["partner"].globalConcurrency',
      'must be a positive integer (got null)',
    ],
    [
      'keyConcurrency 0',
      partner({ keyConcurrency: 0 }),
      'queues["partner"].keyConcurrency',
      'must be a positive integer (got 0)',
    ],
    [
      'keyConcurrency 2.5',
      partner({ keyConcurrency: 2.5 }),
      'queues["partner"].keyConcurrency',
      'must be a positive integer (got 2.5)',
    ],
    [
      'keyConcurrency true',
      partner({ keyConcurrency: true }),
      'queues["partner"].keyConcurrency',
      'must be a positive integer (got true)',
    ],
    [
      'defaults.globalConcurrency 0',
      { defaults: { globalConcurrency: 0 } },
      'defaults.globalConcurrency',
      'must be a positive integer (got 0)',
    ],
    [
      'defaults.keyConcurrency -1',
      { defaults: { keyConcurrency: -1 } },
      'defaults.keyConcurrency',
      'must be a positive integer (got -1)',
    ],
    [
      'rateLimit limit 0',
      partner({ rateLimit: { limit: 0, intervalSeconds: 1 } }),
      'queues["partner"].rateLimit.limit',
      'must be a positive integer (got 0)',
    ],
    [
      'rateLimit limit 1.5',
      partner({ rateLimit: { limit: 1.5, intervalSeconds: 1 } }),
      'queues["partner"].rateLimit.limit',
      'must be a positive integer (got 1.5)',
    ],
    [
      'rateLimit without limit',
      partner({ rateLimit: { intervalSeconds: 1 } }),
      'queues["partner"].rateLimit.limit',
      'must be a positive integer (got undefined)',
    ],
    [
      'rateLimit interval 0',
      partner({ rateLimit: { limit: 5, intervalSeconds: 0 } }),
      'queues["partner"].rateLimit.intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got 0)',
    ],
    [
      'rateLimit interval -1',
      partner({ rateLimit: { limit: 5, intervalSeconds: -1 } }),
      'queues["partner"].rateLimit.intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got -1)',
    ],
    [
      'rateLimit interval 0.0001',
      partner({ rateLimit: { limit: 5, intervalSeconds: 0.0001 } }),
      'queues["partner"].rateLimit.intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got 0.0001)',
    ],
    [
      'rateLimit interval "1"',
      partner({ rateLimit: { limit: 5, intervalSeconds: '1' } }),
      'queues["partner"].rateLimit.intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got "1")',
    ],
    [
      'rateLimit interval Infinity',
      partner({ rateLimit: { limit: 5, intervalSeconds: Infinity } }),
      'queues["partner"].rateLimit.intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got Infinity)',
    ],
    [
      'rateLimit interval 1e11',
      partner({ rateLimit: { limit: 5, intervalSeconds: 1e11 } }),
      'queues["partner"].rateLimit.intervalSeconds',
      'must be at most 10000000000 seconds (got 100000000000)',
    ],
    [
      'rateLimit without interval',
      partner({ rateLimit: { limit: 5 } }),
      'queues["partner"].rateLimit.intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got undefined)',
    ],
    [
      'rateLimit unknown key',
      partner({ rateLimit: { limit: 5, intervalSeconds: 1, burst: 2 } }),
      'queues["partner"].rateLimit.burst',
      'is not an option (known: limit, intervalSeconds)',
    ],
    [
      'rateLimit a number',
      partner({ rateLimit: 5 }),
      'queues["partner"].rateLimit',
      'must be { limit, intervalSeconds } or the name of a rateLimits entry (got 5)',
    ],
    [
      'rateLimit null',
      partner({ rateLimit: null }),
      'queues["partner"].rateLimit',
      'must be { limit, intervalSeconds } or the name of a rateLimits entry (got null)',
    ],
    [
      'rateLimit an array',
      partner({ rateLimit: [5, 1] }),
      'queues["partner"].rateLimit',
      'must be { limit, intervalSeconds } or the name of a rateLimits entry (got an array)',
    ],
    [
      'rateLimit naming nothing',
      partner({ rateLimit: 'partner-api' }),
      'queues["partner"].rateLimit',
      'names no entry of rateLimits ("partner-api"; rateLimits is empty)',
    ],
    [
      'rateLimit naming an unknown limiter',
      { rateLimits: { stripe: { limit: 5, intervalSeconds: 1 } }, queues: { partner: { rateLimit: 'partner-api' } } },
      'queues["partner"].rateLimit',
      'names no entry of rateLimits ("partner-api"; known: "stripe")',
    ],
    [
      'keyRateLimit interval 0',
      partner({ keyRateLimit: { limit: 1, intervalSeconds: 0 } }),
      'queues["partner"].keyRateLimit.intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got 0)',
    ],
    [
      'keyRateLimit unknown key',
      partner({ keyRateLimit: { limit: 1, intervalSeconds: 1, per: 'key' } }),
      'queues["partner"].keyRateLimit.per',
      'is not an option (known: limit, intervalSeconds)',
    ],
    [
      'keyRateLimit naming nothing',
      partner({ keyRateLimit: 'per-account' }),
      'queues["partner"].keyRateLimit',
      'names no entry of rateLimits ("per-account"; rateLimits is empty)',
    ],
    [
      'defaults.rateLimit interval 0',
      { defaults: { rateLimit: { limit: 5, intervalSeconds: 0 } } },
      'defaults.rateLimit.intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got 0)',
    ],
    [
      'defaults.keyRateLimit naming nothing',
      { defaults: { keyRateLimit: 'nope' } },
      'defaults.keyRateLimit',
      'names no entry of rateLimits ("nope"; rateLimits is empty)',
    ],
    ['rateLimits an array', limiters([]), 'rateLimits', 'must be an object (got an array)'],
    ['rateLimits a string', limiters('partner-api'), 'rateLimits', 'must be an object (got "partner-api")'],
    [
      'a rateLimits name with ":"',
      limiters({ 'stripe:acct': { limit: 1, intervalSeconds: 1 } }),
      'rateLimits["stripe:acct"] (limiter name)',
      `must not contain ':' (got "stripe:acct")`,
    ],
    [
      'an empty rateLimits name',
      limiters({ '': { limit: 1, intervalSeconds: 1 } }),
      'rateLimits[""] (limiter name)',
      'must be a non-empty string (got "")',
    ],
    [
      'a rateLimits name of 201 characters',
      limiters({ ['x'.repeat(201)]: { limit: 1, intervalSeconds: 1 } }),
      `rateLimits[${JSON.stringify('x'.repeat(201))}] (limiter name)`,
      'must be at most 200 characters (got 201)',
    ],
    [
      'a rateLimits entry with limit 0',
      limiters({ stripe: { limit: 0, intervalSeconds: 1 } }),
      'rateLimits["stripe"].limit',
      'must be a positive integer (got 0)',
    ],
    [
      'a rateLimits entry with interval 0',
      limiters({ stripe: { limit: 100, intervalSeconds: 0 } }),
      'rateLimits["stripe"].intervalSeconds',
      'must be a number of seconds ≥ 0.001 (got 0)',
    ],
    [
      'a rateLimits entry that is a number',
      limiters({ stripe: 100 }),
      'rateLimits["stripe"]',
      'must be an object (got 100)',
    ],
    [
      'a rateLimits entry with an unknown key',
      limiters({ stripe: { limit: 1, intervalSeconds: 1, burst: 1 } }),
      'rateLimits["stripe"].burst',
      'is not an option (known: limit, intervalSeconds)',
    ],
  ])('%s', async (_, options, field, problem) => {
    await expect(compile(options)).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
    await expect(compile(options)).rejects.toThrow(`Invalid nestjs-workers option "${field}": ${problem}`);
  });

  it('forRootAsync checks them the same way', async () => {
    const compileAsync = (options: WorkerModuleOptions) =>
      Test.createTestingModule({
        imports: [WorkerModule.forRootAsync({ useFactory: () => ({ autoStart: false, ...options }) })],
      }).compile();
    await expect(compileAsync(partner({ rateLimit: { limit: 5, intervalSeconds: 0 } }))).rejects.toThrow(
      'Invalid nestjs-workers option "queues["partner"].rateLimit.intervalSeconds": must be a number of seconds ≥ 0.001 (got 0)',
    );
    await expect(compileAsync(partner({ globalConcurrency: 0 }))).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
    await expect(compileAsync(limiters({ 'a:b': { limit: 1, intervalSeconds: 1 } }))).rejects.toThrow(
      `Invalid nestjs-workers option "rateLimits["a:b"] (limiter name)": must not contain ':' (got "a:b")`,
    );
  });
});

/** An event service with no events: the queue's own options alone decide its limits. */
const noEvents = new EventService();

describe('valid flow-control options become the claims’ limits', () => {
  it('resolves the options, with the rate limiters the module names', () => {
    const config = resolveWorkerConfig({
      rateLimits: { 'partner-api': { limit: 100, intervalSeconds: 60 } },
      defaults: { keyConcurrency: 2 },
      queues: {
        partner: { globalConcurrency: 3, rateLimit: 'partner-api', keyRateLimit: { limit: 1, intervalSeconds: 0.5 } },
        plain: { concurrency: 4 },
      },
    });
    expect(config.rateLimits).toEqual(new Map([['partner-api', { limit: 100, intervalSeconds: 60 }]]));
    expect(config.queueOptions('partner')).toMatchObject({
      globalConcurrency: 3,
      keyConcurrency: 2,
      rateLimit: 'partner-api',
      keyRateLimit: { limit: 1, intervalSeconds: 0.5 },
    });
    const flow = (queueName: string) =>
      claimFlowLimits(
        queueName,
        { limits: config.queueOptions(queueName), rateLimits: config.rateLimits },
        noEvents,
        DEFAULT_START_GRACE_MS,
      );
    expect(flow('partner')).toEqual({
      globalConcurrency: 3,
      keyConcurrency: 2,
      rate: { name: 'partner-api', limit: 100, intervalMs: 60_000 },
      keyRate: { name: 'queue-key:partner', limit: 1, intervalMs: 500 },
      startGraceMs: DEFAULT_START_GRACE_MS,
    });
    // A queue of the config inherits the defaults' keyConcurrency; an unconfigured one takes the defaults.
    expect(flow('plain')).toEqual({ keyConcurrency: 2, startGraceMs: DEFAULT_START_GRACE_MS });
    expect(flow('elsewhere')).toEqual({ keyConcurrency: 2, startGraceMs: DEFAULT_START_GRACE_MS });
  });

  it('gives a queue without any limit no flow (its claims take the plain path)', () => {
    const config = resolveWorkerConfig({ queues: { plain: { concurrency: 4 } } });
    const settings = { limits: config.queueOptions('plain'), rateLimits: config.rateLimits };
    expect(claimFlowLimits('plain', settings, noEvents, DEFAULT_START_GRACE_MS)).toBeUndefined();
    expect(claimFlowLimits('plain', undefined, noEvents, DEFAULT_START_GRACE_MS)).toBeUndefined();
  });

  it('names an inline limit after its queue, within the limiter name column', () => {
    const long = 'q'.repeat(255);
    const config = resolveWorkerConfig({ queues: { [long]: { rateLimit: { limit: 5, intervalSeconds: 1 } } } });
    const flow = claimFlowLimits(
      long,
      { limits: config.queueOptions(long), rateLimits: config.rateLimits },
      noEvents,
      DEFAULT_START_GRACE_MS,
    );
    const name = flow?.rate?.name ?? '';
    expect(name.length).toBeLessThanOrEqual(255);
    expect(name.startsWith('queue:qqq')).toBe(true);
    const short = resolveWorkerConfig({ defaults: { rateLimit: { limit: 5, intervalSeconds: 1 } } });
    const rate = (queueName: string) =>
      claimFlowLimits(
        queueName,
        { limits: short.queueOptions(queueName), rateLimits: short.rateLimits },
        noEvents,
        DEFAULT_START_GRACE_MS,
      )?.rate;
    // The defaults' inline limit is a limit per queue: each queue has a limiter of its own.
    expect(rate('a')).toEqual({ name: 'queue:a', limit: 5, intervalMs: 1000 });
    expect(rate('b')).toEqual({ name: 'queue:b', limit: 5, intervalMs: 1000 });
  });

  it("limits a queue by its event classes' keyConcurrency", () => {
    @QueueEvent('per-user', { keyConcurrency: 1 })
    class OnePerUserEvent extends BaseEvent<null> {
      async execute(): Promise<void> {}
    }
    @QueueEvent('per-user')
    class AnyPerUserEvent extends BaseEvent<null> {
      async execute(): Promise<void> {}
    }
    const events = new EventService();
    events.registerEvents(OnePerUserEvent, AnyPerUserEvent);
    expect(claimFlowLimits('per-user', undefined, events, 50)).toEqual({
      keyConcurrencyByEvent: { OnePerUserEvent: 1 },
      startGraceMs: 50,
    });
  });
});
