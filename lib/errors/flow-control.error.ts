import { WorkerError } from './worker.error.js';

/**
 * pauseQueue / resumeQueue of a queue this module does not know: not in its `queues` options and no
 * registered event class uses it (most likely a typo, which would otherwise pause nothing).
 */
export class UnknownQueueError extends WorkerError {
  constructor(
    readonly queueName: string,
    knownQueues: readonly string[],
  ) {
    super(
      `Unknown queue ${JSON.stringify(queueName)}: it is not in WorkerModule's "queues" option and no registered ` +
        `event class uses it (known: ${knownQueues.map((name) => JSON.stringify(name)).join(', ') || 'none'})`,
    );
  }
}

/** WorkerRateLimiter.take() / tryTake() of a limiter that is not in WorkerModule's `rateLimits` option. */
export class UnknownRateLimiterError extends WorkerError {
  constructor(
    readonly limiterName: string,
    knownLimiters: readonly string[],
  ) {
    super(
      `Unknown rate limiter ${JSON.stringify(limiterName)}: it is not in WorkerModule's "rateLimits" option ` +
        `(known: ${knownLimiters.map((name) => JSON.stringify(name)).join(', ') || 'none'})`,
    );
  }
}

/** A bucket given to WorkerRateLimiter that is not `name` or `name:key` with a well-formed name and key. */
export class InvalidRateLimitBucketError extends WorkerError {
  constructor(
    readonly bucket: unknown,
    readonly problem: string,
  ) {
    super(`Invalid rate limit bucket ${describeBucket(bucket)}: ${problem}`);
  }
}

/** WorkerRateLimiter.take() options that cannot work (`option` names the bad one). */
export class InvalidRateLimitTakeError extends WorkerError {
  constructor(
    readonly option: string,
    readonly problem: string,
  ) {
    super(`Invalid WorkerRateLimiter.take() option "${option}": ${problem}`);
  }
}

/** take() did not get a start within its timeoutMs; nothing was taken. */
export class RateLimitTimeoutError extends WorkerError {
  constructor(
    readonly bucket: string,
    readonly timeoutMs: number,
  ) {
    super(`Rate limit bucket ${JSON.stringify(bucket)} had no start free within ${timeoutMs} ms (timeoutMs)`);
  }
}

/** take()'s signal was aborted before a start was granted; nothing was taken. `cause` is the signal's reason. */
export class RateLimitAbortedError extends WorkerError {
  constructor(
    readonly bucket: string,
    reason: unknown,
  ) {
    super(`Waiting for rate limit bucket ${JSON.stringify(bucket)} was aborted (signal)`, { cause: reason });
  }
}

function describeBucket(bucket: unknown): string {
  if (typeof bucket === 'string') return JSON.stringify(bucket.length > 300 ? `${bucket.slice(0, 300)}…` : bucket);
  return bucket === null ? 'null' : Array.isArray(bucket) ? 'an array' : `of type ${typeof bucket}`;
}
