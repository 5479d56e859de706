import type { ClaimRateLimit } from '../../interfaces/flow-control.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import type { FlowSpelling } from './flow-spelling.js';
import { lockRow } from './lock-row.js';
import { type AtomicWork, chunked, placeholders, type SqlStatement, type StatementResult } from './statement.js';

/**
 * A rate limiter's statements: its lock row, the starts it granted in its window, the record of new
 * starts and the pruning of old ones. A take from a limiter (WorkerRateLimiter.take() through
 * RateLimitStore, or the claim of a rate-limited queue, sql/limited-claim.ts) runs them under the
 * limiter's lock row, so two takes never count the same budget.
 */

type RateTables = Pick<WorkerTables, 'rateLimits' | 'rateStarts'>;

/**
 * Starts older than their window are kept this much longer: takes of one limiter may use different
 * start graces (the claim's, application code's), and one take must not prune what another still
 * counts. Pruning waits until twice this has gathered, so it runs once per PRUNE_MARGIN_MS or so.
 */
export const PRUNE_MARGIN_MS = 10_000;
/** Starts one pruning statement deletes at most (the next take deletes more). */
const PRUNE_BATCH = 5_000;

/** What the lock statement read: the database's now and the limiter's oldest start (pruning). */
export interface LockedLimiter {
  now: number;
  firstStartAt: number | undefined;
}

/**
 * Locks the limiter's row and reads the database's now with it, and the limiter's oldest start
 * (an edge of the starts index, for pruning). No row: the limiter was never used (ensureLimiterStatement).
 */
export function lockLimiterStatement(tables: RateTables, spelling: FlowSpelling, name: string): SqlStatement {
  return {
    sql:
      `SELECT name, ${spelling.nowSql} AS now, ` +
      `(SELECT MIN(started_at) FROM ${tables.rateStarts} WHERE name = ?) AS first_start_at ` +
      `FROM ${tables.rateLimits} WHERE name = ?${spelling.lockRowsClause}`,
    parameters: [name, name],
  };
}

/** Inserts the limiter's row unless it exists (two first takes racing both go on). */
export function ensureLimiterStatement(tables: RateTables, spelling: FlowSpelling, name: string): SqlStatement {
  return { sql: spelling.upsertRows(tables.rateLimits, ['name'], '(?)', ['name'], []), parameters: [name] };
}

/** Locks the limiter's row, inserting it first when missing: the lock statement's reading. */
export function* lockLimiter(
  tables: RateTables,
  spelling: FlowSpelling,
  name: string,
): Generator<SqlStatement, LockedLimiter, StatementResult> {
  const row = yield* lockRow({
    lock: lockLimiterStatement(tables, spelling, name),
    ensure: ensureLimiterStatement(tables, spelling, name),
    table: tables.rateLimits,
    name,
  });
  const first = row.first_start_at;
  return { now: Number(row.now), firstStartAt: first === null || first === undefined ? undefined : Number(first) };
}

/**
 * The database's now once a take holds its locks (a limited claim: the queue's row and the limiters';
 * WorkerRateLimiter.take(): the limiter's): the instant its starts are granted and stamped. A now read
 * with the locking read is that statement's start on the servers, before any wait for a row another
 * take holds: stamped with it, a start would leave its window early by the wait, and the next take
 * could grant more than the limit in a window of the real starts.
 */
export function grantClockStatement(spelling: FlowSpelling): SqlStatement {
  return { sql: `SELECT ${spelling.nowSql} AS now`, parameters: [] };
}

/** A window's length: a start counts for interval + the start grace (see ClaimFlowLimits.startGraceMs). */
export function windowMs(limit: ClaimRateLimit, graceMs: number): number {
  return limit.intervalMs + graceMs;
}

/** How many starts a bucket has in the window, and the oldest of them. */
export interface BucketStarts {
  started: number;
  oldestAt: number;
}

/**
 * The limiter's starts since `since` (exclusive) per bucket key: all of them, or those of `bucketKeys`.
 * One range of the starts index (name, started_at, bucket_key). No upper bound: a start another take
 * recorded with a reading of the clock later than this one's still counts.
 */
export function startsPerBucketStatement(
  rateStarts: string,
  name: string,
  since: number,
  bucketKeys?: readonly string[],
): SqlStatement {
  const buckets = bucketKeys ? ` AND bucket_key IN (${placeholders(bucketKeys.length)})` : '';
  return {
    sql:
      `SELECT bucket_key, COUNT(*) AS started, MIN(started_at) AS oldest_at FROM ${rateStarts} ` +
      `WHERE name = ? AND started_at > ?${buckets} GROUP BY bucket_key`,
    parameters: [name, since, ...(bucketKeys ?? [])],
  };
}

/** The rows of startsPerBucketStatement by bucket key. */
export function bucketStartsOf(rows: Record<string, unknown>[]): Map<string, BucketStarts> {
  return new Map(
    rows.map((row) => [String(row.bucket_key), { started: Number(row.started), oldestAt: Number(row.oldest_at) }]),
  );
}

/** Records starts at `at` (database clock), one per bucket key given (a key repeated is several starts). */
export function recordStartsStatements(
  rateStarts: string,
  spelling: FlowSpelling,
  name: string,
  bucketKeys: readonly string[],
  at: number,
): SqlStatement[] {
  return chunked([...bucketKeys], Math.floor(spelling.maxParameters / 3)).map((chunk) => ({
    sql: `INSERT INTO ${rateStarts} (name, bucket_key, started_at) VALUES ` + chunk.map(() => '(?, ?, ?)').join(', '),
    parameters: chunk.flatMap((bucketKey) => [name, bucketKey, at]),
  }));
}

/**
 * The bounded DELETE of the limiter's starts that no take counts any more, or nothing while too few
 * have gathered (see PRUNE_MARGIN_MS).
 */
export function pruneStartsStatement(
  rateStarts: string,
  spelling: FlowSpelling,
  limit: ClaimRateLimit,
  graceMs: number,
  locked: LockedLimiter,
): SqlStatement | undefined {
  const before = locked.now - windowMs(limit, graceMs) - PRUNE_MARGIN_MS;
  if (locked.firstStartAt === undefined || locked.firstStartAt > before - PRUNE_MARGIN_MS) return undefined;
  return {
    sql: spelling.boundedDelete({
      table: rateStarts,
      key: ['id'],
      where: 'name = ? AND started_at <= ?',
      orderBy: 'started_at',
      limit: PRUNE_BATCH,
    }),
    parameters: [limit.name, before],
  };
}

/**
 * When a bucket that is spent frees budget again: its oldest start in the window leaves it. Exact
 * while the bucket never held more than its limit (a limit lowered since: early, and the take then
 * simply finds no budget yet and says again).
 */
export function nextStartAtOf(limit: ClaimRateLimit, graceMs: number, oldestAt: number): number {
  return oldestAt + windowMs(limit, graceMs);
}

export type TakeResult = { granted: true } | { granted: false; nextStartAt: number };

/**
 * One take from a bucket of a limiter: lock the limiter, count the bucket's starts in the window,
 * record a start if under the limit, else tell when the oldest counted start leaves the window.
 */
export function takeStart(
  tables: RateTables,
  spelling: FlowSpelling,
  limit: ClaimRateLimit,
  bucketKey: string,
  graceMs: number,
): AtomicWork<TakeResult> {
  return function* () {
    const locked = yield* lockLimiter(tables, spelling, limit.name);
    // The lock statement's now may predate its wait for the lock (another take or a limited claim held
    // it): the start is stamped with a reading taken once the lock is held, when it is granted.
    const { rows: clock } = yield grantClockStatement(spelling);
    const now = Number(clock[0]?.now ?? locked.now);
    const since = now - windowMs(limit, graceMs);
    const { rows } = yield startsPerBucketStatement(tables.rateStarts, limit.name, since, [bucketKey]);
    const bucket = bucketStartsOf(rows).get(bucketKey);
    if (bucket && bucket.started >= limit.limit) {
      return { granted: false, nextStartAt: nextStartAtOf(limit, graceMs, bucket.oldestAt) };
    }
    for (const insert of recordStartsStatements(tables.rateStarts, spelling, limit.name, [bucketKey], now)) {
      yield insert;
    }
    const prune = pruneStartsStatement(tables.rateStarts, spelling, limit, graceMs, locked);
    if (prune) yield prune;
    return { granted: true };
  };
}
