import type { DataSource } from 'typeorm';
import { rateIntervalMs } from '../common/rate-interval.js';
import {
  InvalidRateLimitBucketError,
  InvalidRateLimitTakeError,
  RateLimitAbortedError,
  RateLimitTimeoutError,
  UnknownRateLimiterError,
} from '../errors/flow-control.error.js';
import type { ClaimRateLimit, RateLimitOptions } from '../interfaces/flow-control.interface.js';
import { type DatabaseClock, databaseClock } from '../storage/database-clock.js';
import { RateLimitStore } from '../storage/rate-limit-store.js';
import { flowControlMessages as messages } from '../worker.messages.js';

/** A key's budget is stored under its key, as a concurrency key is: varchar(255). */
export const MAX_RATE_LIMIT_KEY_LENGTH = 255;

/** What WorkerRateLimiter needs besides the DataSource (WorkerModule wires it). */
export interface WorkerRateLimiterSettings {
  /** The module's named rate limiters (`rateLimits`), already validated. */
  rateLimits: ReadonlyMap<string, RateLimitOptions>;
  /**
   * How long past its interval a start still counts (the claim's startGraceMs): the claims of the
   * workers and application code count the same window of one limiter, so neither exceeds its limit.
   */
  startGraceMs: number;
}

/** How long take() may wait, and how it is called off. */
export interface RateLimitTakeOptions {
  /** Aborting it rejects the wait with RateLimitAbortedError; nothing is taken. */
  signal?: AbortSignal;
  /**
   * At most this long (ms) until a start is granted, else RateLimitTimeoutError (as soon as the
   * limiter tells that its next free start comes later). Default: no limit. 0: one try.
   */
  timeoutMs?: number;
}

/**
 * The module's named rate limiters (`rateLimits`) for application code, sharing one budget with the
 * workers of the queues that name them, over every process on the database. A bucket is `name` (the
 * limiter's whole budget, which a queue's `rateLimit: name` takes from) or `name:key` (one key's
 * budget, split at the first ':', which a queue's `keyRateLimit: name` takes from for concurrency
 * key `key`).
 *
 * Each take is one short transaction under the limiter's lock row, counted on the database's clock:
 * granted starts never exceed the limit in any window, whatever the number of processes. A take that
 * finds the budget spent sleeps, in no transaction, until the database says a start frees up, then
 * tries again.
 */
export class WorkerRateLimiter {
  private readonly store: RateLimitStore;
  private readonly clock: DatabaseClock;

  constructor(
    dataSource: DataSource,
    private readonly settings: WorkerRateLimiterSettings,
  ) {
    this.store = new RateLimitStore(dataSource);
    this.clock = databaseClock(dataSource);
  }

  /** Waits until `bucket` has a start free and takes it (recorded as started now). */
  async take(bucket: string, options: RateLimitTakeOptions = {}): Promise<void> {
    const { limit, key } = this.bucketOf(bucket);
    const { signal, timeoutMs } = takeOptionsOf(options);
    const startedAt = performance.now();
    for (;;) {
      if (signal?.aborted) throw new RateLimitAbortedError(bucket, signal.reason);
      const result = await this.store.tryTake(limit, key, this.settings.startGraceMs);
      if (result.granted) return;
      // nextStartAt is the database's clock; the estimate is never ahead of it, so this never wakes early.
      const waitMs = Math.max(1, result.nextStartAt - (await this.clock.current()));
      if (timeoutMs !== undefined && performance.now() - startedAt + waitMs > timeoutMs)
        throw new RateLimitTimeoutError(bucket, timeoutMs);
      await sleep(waitMs, signal, () => new RateLimitAbortedError(bucket, signal?.reason));
    }
  }

  /** Takes a start of `bucket` if one is free now; resolves to whether it did (never waits). */
  async tryTake(bucket: string): Promise<boolean> {
    const { limit, key } = this.bucketOf(bucket);
    return (await this.store.tryTake(limit, key, this.settings.startGraceMs)).granted;
  }

  /** The limiter and the bucket key ('' for the whole budget) of `bucket`, checked. */
  private bucketOf(bucket: unknown): { limit: ClaimRateLimit; key: string } {
    if (typeof bucket !== 'string') throw new InvalidRateLimitBucketError(bucket, messages.bucketNotString());
    const colon = bucket.indexOf(':');
    const name = colon < 0 ? bucket : bucket.slice(0, colon);
    const key = colon < 0 ? '' : bucket.slice(colon + 1);
    if (name === '') throw new InvalidRateLimitBucketError(bucket, messages.bucketNameEmpty());
    if (colon >= 0) assertKey(bucket, key);
    const options = this.settings.rateLimits.get(name);
    if (!options) throw new UnknownRateLimiterError(name, [...this.settings.rateLimits.keys()]);
    // As the claims of a queue naming this limiter count its window (whole milliseconds, at least 1).
    const intervalMs = rateIntervalMs(options.intervalSeconds);
    return { limit: { name, limit: options.limit, intervalMs }, key };
  }
}

function assertKey(bucket: string, key: string): void {
  if (key === '') throw new InvalidRateLimitBucketError(bucket, messages.bucketKeyEmpty());
  if (!(key as string & { isWellFormed(): boolean }).isWellFormed())
    throw new InvalidRateLimitBucketError(bucket, messages.bucketKeyMalformed('has a lone surrogate'));
  if (key.includes('\u0000'))
    throw new InvalidRateLimitBucketError(bucket, messages.bucketKeyMalformed('contains NUL (\\u0000)'));
  // key.length counts UTF-16 units, never fewer than the characters: only a long key needs counting.
  const length = key.length <= MAX_RATE_LIMIT_KEY_LENGTH ? key.length : [...key].length;
  if (length > MAX_RATE_LIMIT_KEY_LENGTH)
    throw new InvalidRateLimitBucketError(bucket, messages.bucketKeyTooLong(MAX_RATE_LIMIT_KEY_LENGTH, length));
}

function takeOptionsOf(options: unknown): RateLimitTakeOptions {
  if (typeof options !== 'object' || options === null)
    throw new InvalidRateLimitTakeError('options', 'must be an object ({ signal?, timeoutMs? })');
  const { signal, timeoutMs } = options as Record<string, unknown>;
  if (signal !== undefined && !(signal instanceof AbortSignal))
    throw new InvalidRateLimitTakeError('signal', messages.signalNotAbortSignal());
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0))
    throw new InvalidRateLimitTakeError('timeoutMs', messages.timeoutNotPositive(String(timeoutMs)));
  return { signal, timeoutMs };
}

/** Resolves after `ms`, or rejects with `aborted()` as soon as `signal` aborts (its timer cleared). */
function sleep(ms: number, signal: AbortSignal | undefined, aborted: () => Error): Promise<void> {
  return new Promise((resolve, reject) => {
    // Aborted while the last take ran: its 'abort' event is over.
    if (signal?.aborted) return reject(aborted());
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(aborted());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
