/**
 * Flow control: limits that hold for every process on the database (pause, global concurrency,
 * concurrency per key, rate limits per queue and per key) and the claim's view of them.
 */

/** At most `limit` starts in any `intervalSeconds`-long window, counted by the database for every process. */
export interface RateLimitOptions {
  /** Starts per interval: a positive integer. */
  limit: number;
  /** The window's length in seconds: positive (fractions allowed, at least 0.001). */
  intervalSeconds: number;
}

/**
 * A queue's rate limit: inline, or the name of a limiter of the module's `rateLimits` — the budget
 * that `WorkerRateLimiter.take(name)` (and `take(\`${name}:${key}\`)` for a key) takes from too.
 */
export type RateLimitReference = RateLimitOptions | string;

/** A rate limit the claim applies: the limiter whose lock row and starts it uses, and its window. */
export interface ClaimRateLimit {
  /** The limiter's name (a module `rateLimits` name, or `queue:<queue name>` for an inline limit). */
  name: string;
  limit: number;
  intervalMs: number;
}

/**
 * What a claim of a queue with limits must respect (ClaimRequest.flow). Without it (a queue with no
 * limits) the claim is the plain one, which pays only the paused check.
 */
export interface ClaimFlowLimits {
  /** At most this many events of the queue run at once over every process. */
  globalConcurrency?: number;
  /** At most this many events of one concurrency key run at once (rows without a key are not limited). */
  keyConcurrency?: number;
  /** Per event name, a keyConcurrency of its own (from `@QueueEvent({ keyConcurrency })`). */
  keyConcurrencyByEvent?: Readonly<Record<string, number>>;
  /** Starts of the queue, over every process (the limiter's whole budget, bucket key ''). */
  rate?: ClaimRateLimit;
  /** Starts per concurrency key (bucket key = the row's concurrency key). */
  keyRate?: ClaimRateLimit;
  /**
   * A granted start counts in its limiter's window for interval + startGraceMs, and the worker starts
   * a rate-limited event within startGraceMs of the grant (ClaimFlowReport.grantedAt: the time since it
   * sent the claim less the claim's wait in the database, waitedMs) or gives it back unstarted: so the
   * execute() starts in any window never exceed the limit, even with the claim's round trip.
   */
  startGraceMs: number;
}

/** What a limited claim tells the worker beyond its rows (ClaimRequest.flowReport, filled by the claim). */
export interface ClaimFlowReport {
  /**
   * The database-clock instant (epoch ms) when a rate limit that held rows back frees budget again:
   * the worker claims again then instead of waiting for its next poll.
   */
  nextStartAt?: number;
  /** The queue is paused: the claim took nothing. */
  paused?: boolean;
  /**
   * A claim that took rows under a rate limit: the database-clock instant (epoch ms) their starts were
   * recorded with, read after the claim's other statements, still under its locks (the grace is
   * measured from it).
   */
  grantedAt?: number;
  /**
   * With grantedAt: how long the claim spent in the database before it (waiting for the queue's or a
   * limiter's lock row, SQLite's write lock, and its statements), never more than it did. The worker's
   * lateness is the time since it sent the claim less this: the stamp came after both.
   */
  waitedMs?: number;
}
