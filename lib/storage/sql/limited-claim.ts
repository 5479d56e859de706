import type { ClaimFlowLimits, ClaimFlowReport, ClaimRateLimit } from '../../interfaces/flow-control.interface.js';
import type { WorkerTables } from '../worker-tables.js';
import { concurrencyKeyOf, type RawWorkerRow } from '../worker-row.js';
import { CLAIM_ORDER, CLAIMED_COLUMNS, claimAssignments, type ClaimParameters, compareClaimOrder } from './claim.js';
import type { FlowSpelling } from './flow-spelling.js';
import { lockRow } from './lock-row.js';
import { namedStatement } from './named-parameters.js';
import {
  type BucketStarts,
  grantClockStatement,
  bucketStartsOf,
  type LockedLimiter,
  lockLimiter,
  nextStartAtOf,
  pruneStartsStatement,
  recordStartsStatements,
  startsPerBucketStatement,
  windowMs,
} from './rate-starts.js';
import { deleteSlotsStatements, insertSlotsStatements, type NewSlot, slotRowsOf, slotsStatement } from './slots.js';
import { type AtomicWork, chunked, placeholders, type SqlStatement, type StatementResult } from './statement.js';

/**
 * The claim of a queue with limits (ClaimRequest.flow), one transaction for every database: under the
 * queue's lock row it counts what runs (the live slots) and what started (the rate limiters' starts,
 * under their own lock rows), takes only what the limits allow, keys in turn, and records the slots
 * and starts of what it took. Every limited claim of a queue runs under that lock row, so no two
 * claims count the same capacity, whatever the number of processes: on the servers a locking read
 * of the row (READ COMMITTED: each statement after it sees what the claim before it committed), on
 * SQLite BEGIN IMMEDIATE.
 */

type ClaimTables = Pick<WorkerTables, 'pending' | 'queues' | 'slots' | 'rateLimits' | 'rateStarts'>;

/** The rows a limited claim took, and what it tells the worker beyond them. */
export interface LimitedClaimResult {
  rows: RawWorkerRow[];
  report: ClaimFlowReport;
}

/** Candidates read at least, and per row the claim may take: enough to find rows of other keys behind a busy key's. */
const MIN_WINDOW = 100;
const WINDOW_PER_ROW = 4;
/**
 * Windows one claim reads at most. The first one always holds a row the claim may take when any
 * exists (the keys full or spent before the claim are left out in SQL); the later ones fill the
 * budget past the keys this claim filled.
 */
const MAX_WINDOWS = 4;
/** Keys this claim filled (or read) that a window's SQL names at most (the others are filtered in JavaScript). */
export const MAX_EXCLUDED_KEYS = 500;
/**
 * Reads of other keys' rows one claim makes at most: each leaves out the keys read
 * before it, so a busy key under its limit cannot take the capacity that keys behind its backlog share.
 */
const MAX_OTHER_KEY_READS = 4;
/** Parameters of a candidate read besides its excluded keys and its event names: a margin under maxParameters. */
const CANDIDATE_PARAMETERS = 16;

/**
 * The queue's lock row with the paused flag, and the database's now read with it: on the servers the
 * statement's start, before any wait for the row (PostgreSQL's statement_timestamp(), MySQL's
 * UTC_TIMESTAMP()), so the claim's grant instant is read after the locks (grantClockStatement).
 */
export function lockQueueStatement(
  tables: Pick<WorkerTables, 'queues'>,
  spelling: FlowSpelling,
  queueName: string,
): SqlStatement {
  return {
    sql:
      `SELECT paused, ${spelling.nowSql} AS now FROM ${tables.queues} ` +
      `WHERE queue_name = ?${spelling.lockRowsClause}`,
    parameters: [queueName],
  };
}

/** The queue's row, unless it exists (a queue that was never paused has none until its first limited claim). */
export function ensureQueueStatement(
  tables: Pick<WorkerTables, 'queues'>,
  spelling: FlowSpelling,
  queueName: string,
): SqlStatement {
  return {
    sql: spelling.upsertRows(
      tables.queues,
      ['queue_name', 'paused', 'updated_at'],
      `(?, 0, ${spelling.nowSql})`,
      ['queue_name'],
      [],
    ),
    parameters: [queueName],
  };
}

/** A row the claim may take, as the candidate read returns it. */
interface Candidate {
  id: string;
  eventName: string;
  concurrencyKey: string | null;
  priority: number;
  availableAt: number;
}

/** Event names whose rows share one key concurrency limit (`others`: every event name but `except`). */
export interface KeyLimitGroup {
  limit: number;
  events: readonly string[];
  others: boolean;
}

/**
 * The key concurrency limits of a claim grouped by limit: one group per limit of keyConcurrencyByEvent,
 * and the queue's keyConcurrency for the other event names (`events` then lists the names it excludes).
 */
export function keyLimitGroups(flow: ClaimFlowLimits): KeyLimitGroup[] {
  const byLimit = new Map<number, string[]>();
  const named = Object.entries(flow.keyConcurrencyByEvent ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (const [event, limit] of named) byLimit.set(limit, [...(byLimit.get(limit) ?? []), event]);
  const groups: KeyLimitGroup[] = [...byLimit].map(([limit, events]) => ({ limit, events, others: false }));
  if (flow.keyConcurrency !== undefined) {
    groups.push({ limit: flow.keyConcurrency, events: named.map(([event]) => event), others: true });
  }
  return groups;
}

/** What the candidate read leaves out and how far it reads. */
export interface CandidateFilter {
  queueName: string;
  /** The pass start capped at the claim's now. */
  dueBy: number;
  now: number;
  /** Keys this claim filled or spent (reading other keys: also read), at most MAX_EXCLUDED_KEYS: excluded in SQL. */
  excludedKeys: readonly string[];
  /** Leave out the rows without a key too (reading other keys after some were read: they count as one more key). */
  excludeUnkeyed?: boolean;
  /**
   * Keys full before the claim, counted in SQL from the slots (the live ones: the claim deleted the
   * dead ones first): for each group, its rows of keys with `limit` slots or more are left out.
   */
  keyLimits?: { slots: string; groups: readonly KeyLimitGroup[] };
  /**
   * Keys whose rate budget was spent before the claim, counted in SQL from the limiter's starts since
   * `since`: left out (or, `only`, the only keys read: whether spent keys hold rows back).
   */
  keyRate?: { rateStarts: string; name: string; since: number; limit: number; only?: boolean };
  /** Read past this row in claim order (the last row of this claim's window before). */
  after?: { priority: number; availableAt: number; id: unknown };
  window: number;
  /** Lock what is read, passing over rows others hold (a read only to know whether work waits: false). */
  lock: boolean;
}

/**
 * The claimable rows of the queue in claim order, through the claim-order index (queue_name,
 * priority, available_at, id): the same conditions as the plain claim (claimableCondition), with the
 * claim's now as a parameter (the slots were judged live or dead at that same instant), minus the
 * keys that can take nothing, at most `window` rows. The keys full or spent before the claim are
 * found by subqueries of the slots and the starts (each evaluated once, their parameters a few), so
 * no number of such keys makes the statement longer, and a long backlog of one of them is never read.
 * On the servers the rows read are locked, passing over rows other transactions hold.
 */
export function candidatesStatement(pending: string, spelling: FlowSpelling, filter: CandidateFilter): SqlStatement {
  const keyConditions: string[] = [];
  const keyParameters: unknown[] = [];
  for (const group of filter.keyLimits?.groups ?? []) {
    const events =
      group.events.length === 0
        ? ''
        : `event_name ${group.others ? 'NOT IN' : 'IN'} (${placeholders(group.events.length)}) AND `;
    keyConditions.push(
      `NOT (${events}concurrency_key IN (SELECT concurrency_key FROM ${filter.keyLimits!.slots} ` +
        'WHERE queue_name = ? AND concurrency_key IS NOT NULL GROUP BY concurrency_key HAVING COUNT(*) >= ?))',
    );
    keyParameters.push(...group.events, filter.queueName, group.limit);
  }
  const rate = filter.keyRate;
  if (rate) {
    keyConditions.push(
      `concurrency_key ${rate.only ? 'IN' : 'NOT IN'} (SELECT bucket_key FROM ${rate.rateStarts} ` +
        "WHERE name = ? AND started_at > ? AND bucket_key <> '' GROUP BY bucket_key HAVING COUNT(*) >= ?)",
    );
    keyParameters.push(rate.name, rate.since, rate.limit);
  }
  const keys = filter.excludedKeys;
  if (keys.length > 0) {
    keyConditions.push(`concurrency_key NOT IN (${placeholders(keys.length)})`);
    keyParameters.push(...keys);
  }
  // A row without a key has no key limit (NOT IN / IN over NULL would leave it out).
  const keyCondition =
    rate?.only || filter.excludeUnkeyed
      ? [' AND concurrency_key IS NOT NULL', ...keyConditions].join(' AND ')
      : keyConditions.length === 0
        ? ''
        : ` AND (concurrency_key IS NULL OR (${keyConditions.join(' AND ')}))`;
  const after = filter.after;
  // Keyset continuation in claim order: bounded parameters however far the claim has read.
  const afterCondition = after
    ? ' AND (priority > ? OR (priority = ? AND (available_at > ? OR (available_at = ? AND id > ?))))'
    : '';
  const afterParameters = after ? [after.priority, after.priority, after.availableAt, after.availableAt, after.id] : [];
  return {
    sql:
      `SELECT id, event_name, concurrency_key, priority, available_at FROM ${pending}${spelling.claimIndexHint} ` +
      'WHERE queue_name = ? AND available_at <= ? AND deleted_at IS NULL ' +
      'AND (lease_expires_at IS NULL OR lease_expires_at <= ?)' +
      keyCondition +
      afterCondition +
      ` ORDER BY ${CLAIM_ORDER} LIMIT ?${filter.lock ? spelling.lockSkippingClause : ''}`,
    parameters: [filter.queueName, filter.dueBy, filter.now, ...keyParameters, ...afterParameters, filter.window],
  };
}

function candidatesOf(rows: RawWorkerRow[]): (Candidate & { rawId: unknown })[] {
  return rows.map((row) => ({
    id: String(row.id),
    rawId: row.id,
    eventName: String(row.event_name),
    concurrencyKey: concurrencyKeyOf(row.concurrency_key),
    priority: Number(row.priority),
    availableAt: Number(row.available_at),
  }));
}

/** What the claim counted, and what it has taken so far: the state the choice of rows works from. */
class Budget {
  /** Rows the claim may still take (the worker's limit, global concurrency, the queue's rate budget). */
  remaining: number;
  /** Which of the limits above set `remaining` to 0 first: a rate limit means nextStartAt. */
  readonly rateBound: boolean;
  private readonly running: Map<string, number>;
  private readonly keyStarts: Map<string, BucketStarts>;
  private readonly takenPerKey = new Map<string, number>();
  /** Keys passed over because their rate budget is spent (nextStartAt). */
  readonly rateHeldKeys = new Set<string>();

  constructor(
    private readonly flow: ClaimFlowLimits,
    limit: number,
    runningTotal: number,
    runningPerKey: Map<string, number>,
    queueRateLeft: number,
    keyStarts: Map<string, BucketStarts>,
  ) {
    const concurrencyLeft =
      flow.globalConcurrency === undefined ? Infinity : Math.max(0, flow.globalConcurrency - runningTotal);
    const other = Math.min(limit, concurrencyLeft);
    this.remaining = Math.max(0, Math.min(other, queueRateLeft));
    this.rateBound = queueRateLeft < other;
    this.running = runningPerKey;
    this.keyStarts = keyStarts;
  }

  /** The key's concurrency limit for this event name (none: unlimited). */
  private keyLimitFor(eventName: string): number | undefined {
    return this.flow.keyConcurrencyByEvent?.[eventName] ?? this.flow.keyConcurrency;
  }

  /** The highest limit any event has for a key: there, the key takes nothing (none: some event is unlimited). */
  private maxKeyLimit(): number | undefined {
    if (this.flow.keyConcurrency === undefined) return undefined;
    return Math.max(this.flow.keyConcurrency, ...Object.values(this.flow.keyConcurrencyByEvent ?? {}));
  }

  private taken(key: string): number {
    return this.takenPerKey.get(key) ?? 0;
  }

  private rateSpent(key: string): boolean {
    const keyRate = this.flow.keyRate;
    return keyRate !== undefined && (this.keyStarts.get(key)?.started ?? 0) + this.taken(key) >= keyRate.limit;
  }

  /**
   * Keys this claim filled or spent, which can take no row at all now: the next window's SQL leaves
   * them out (at most MAX_EXCLUDED_KEYS; allows() passes over the others). The keys full or spent
   * before the claim the SQL finds itself (CandidateFilter.keyLimits, keyRate).
   */
  excludedKeys(): string[] {
    const max = this.maxKeyLimit();
    const keys: string[] = [];
    for (const key of this.takenPerKey.keys()) {
      if (keys.length === MAX_EXCLUDED_KEYS) break;
      if ((max !== undefined && (this.running.get(key) ?? 0) + this.taken(key) >= max) || this.rateSpent(key)) {
        keys.push(key);
      }
    }
    return keys;
  }

  /** The keys of `rows` whose starts in the key rate limiter's window are not counted yet. */
  uncountedKeys(rows: readonly Candidate[]): string[] {
    const keys = new Set<string>();
    for (const row of rows) {
      const key = row.concurrencyKey;
      if (key !== null && key !== '' && !this.keyStarts.has(key)) keys.add(key);
    }
    return [...keys];
  }

  /** Notes the starts counted for `keys` (a key with none: 0). */
  countStarts(keys: readonly string[], starts: Map<string, BucketStarts>): void {
    for (const key of keys) this.keyStarts.set(key, starts.get(key) ?? { started: 0, oldestAt: 0 });
  }

  /** Whether the row may be taken now (its key's limits), noting keys held back by their rate budget. */
  allows(row: Candidate): boolean {
    const key = row.concurrencyKey;
    if (key === null) return true;
    const limit = this.keyLimitFor(row.eventName);
    if (limit !== undefined && (this.running.get(key) ?? 0) + this.taken(key) >= limit) return false;
    if (this.rateSpent(key)) {
      this.rateHeldKeys.add(key);
      return false;
    }
    return true;
  }

  /** How many keys (the rows without a key: one more) hold a row of `rows` that may be taken now. */
  sharingKeys(rows: readonly Candidate[]): number {
    const keys = new Set<string | null>();
    for (const row of rows) if (!keys.has(row.concurrencyKey) && this.allows(row)) keys.add(row.concurrencyKey);
    return keys.size;
  }

  take(row: Candidate): void {
    this.remaining--;
    if (row.concurrencyKey !== null) this.takenPerKey.set(row.concurrencyKey, this.taken(row.concurrencyKey) + 1);
  }
}

/**
 * The keys take turns: in claim order of their first row, each key's first row it may take, then
 * each key's second, … (rows without a key are one more key, with no limit of its own), so a key
 * with a long backlog takes one row per turn like any other. Returns the rows taken, and whether
 * rows the limits of the key allowed were left because the claim's budget ran out.
 */
function chooseInTurns(candidates: Candidate[], budget: Budget): { chosen: Candidate[]; leftOver: boolean } {
  const groups = new Map<string | null, Candidate[]>();
  for (const row of candidates) {
    const group = groups.get(row.concurrencyKey);
    if (group) group.push(row);
    else groups.set(row.concurrencyKey, [row]);
  }
  const queues = [...groups.values()];
  const chosen: Candidate[] = [];
  let progress = true;
  while (progress && budget.remaining > 0) {
    progress = false;
    for (const rows of queues) {
      if (budget.remaining === 0) break;
      // The key's first row it may take; rows it may not take now stay out of this claim (counts only grow in it).
      while (rows.length > 0 && !budget.allows(rows[0]!)) rows.shift();
      const row = rows.shift();
      if (!row) continue;
      budget.take(row);
      chosen.push(row);
      progress = true;
    }
  }
  const leftOver = queues.some((rows) => rows.some((row) => budget.allows(row)));
  return { chosen, leftOver };
}

/** The earliest of the instants when a spent rate budget that held rows back frees again. */
function nextStartAt(
  flow: ClaimFlowLimits,
  firstAt: number,
  queueStarts: BucketStarts | undefined,
  keyStarts: Map<string, BucketStarts>,
  heldByQueueRate: boolean,
  heldKeys: Iterable<string>,
): number | undefined {
  const instants: number[] = [];
  // A bucket that had no start in the window before this claim gets its first ones at `firstAt`.
  const oldest = (starts: BucketStarts | undefined): number =>
    starts && starts.started > 0 ? starts.oldestAt : firstAt;
  if (heldByQueueRate && flow.rate) instants.push(nextStartAtOf(flow.rate, flow.startGraceMs, oldest(queueStarts)));
  if (flow.keyRate) {
    for (const key of heldKeys)
      instants.push(nextStartAtOf(flow.keyRate, flow.startGraceMs, oldest(keyStarts.get(key))));
  }
  return instants.length > 0 ? Math.min(...instants) : undefined;
}

/** The limiters of the claim by name, each once, in name order: locked in that order, two claims never deadlock. */
function limitersOf(flow: ClaimFlowLimits): ClaimRateLimit[] {
  const byName = new Map<string, ClaimRateLimit>();
  for (const limit of [flow.rate, flow.keyRate]) if (limit) byName.set(limit.name, limit);
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * The limited claim (design steps 1–6): lock the queue row (paused: take nothing); delete the dead
 * slots, count the live ones per key; lock the rate limiters and count their starts in the window;
 * read candidates in claim order, leaving out the keys that can take nothing, and choose keys in
 * turn within every limit (further windows past the keys it filled, up to MAX_WINDOWS; reads of
 * other keys' rows past a busy key's, up to MAX_OTHER_KEY_READS); lease the chosen rows, insert
 * their slots and starts; tell when a rate limit that held rows back frees budget again.
 * The claim's now (slots judged, starts stamped, rows due) is read once every lock is held, and the
 * report tells it (grantedAt) with how long the claim waited in the database before it (waitedMs:
 * since the first locking read began, or since `waitingSince` on the same clock when the dialect
 * measured a wait before the script, SQLite's for its write lock).
 */
export function limitedClaim(
  tables: ClaimTables,
  spelling: FlowSpelling,
  parameters: ClaimParameters,
  flow: ClaimFlowLimits,
  waitingSince?: number,
): AtomicWork<LimitedClaimResult> {
  const { queueName, leaseToken } = parameters;
  const concurrencyLimited =
    flow.globalConcurrency !== undefined ||
    flow.keyConcurrency !== undefined ||
    Object.keys(flow.keyConcurrencyByEvent ?? {}).length > 0;
  return function* () {
    // 1. The queue's lock row, and the claim's now.
    const queue = yield* lockRow({
      lock: lockQueueStatement(tables, spelling, queueName),
      ensure: ensureQueueStatement(tables, spelling, queueName),
      table: tables.queues,
      name: queueName,
    });
    // A claim that takes nothing wrote nothing a crash could lose harmfully (the lock, the queue's
    // row, dead slots: all found again by the next claim), so its commit need not wait for the log
    // flush: an idle queue's polls then cost no disk flush each. A claim that takes rows flushes:
    // losing its slots and starts while its worker runs the rows would let a later claim exceed a limit.
    const unflushed: SqlStatement | undefined =
      spelling.unflushedCommit === undefined ? undefined : { sql: spelling.unflushedCommit, parameters: [] };
    if (Number(queue.paused) === 1) {
      if (unflushed) yield unflushed;
      return { rows: [], report: { paused: true } };
    }
    const lockedAt = Number(queue.now);

    // Each limiter locked (in name order) before the claim's now is read: a wait for one (another
    // claim of a queue sharing it, a take of application code) comes before the grant too.
    const lockedLimiters = new Map<string, LockedLimiter>();
    for (const limit of limitersOf(flow))
      lockedLimiters.set(limit.name, yield* lockLimiter(tables, spelling, limit.name));
    // Without a rate limit, the lock's reading will do: judged at an earlier now, slots look live
    // longer and leases unexpired longer, which only takes less. A rate limit's starts are stamped
    // with the grant instant, which the start grace is measured from.
    let now = lockedAt;
    if (lockedLimiters.size > 0) {
      const { rows: clock } = yield grantClockStatement(spelling);
      now = Number(clock[0]?.now ?? lockedAt);
    }
    // Where the claim's wait began: its lock statement's start (or, on SQLite, before BEGIN IMMEDIATE).
    const waitStart = waitingSince === undefined ? lockedAt : Math.min(waitingSince, lockedAt);

    // 2. What runs: the live slots per key; the dead ones go.
    let runningTotal = 0;
    const runningPerKey = new Map<string, number>();
    if (concurrencyLimited) {
      const { rows } = yield slotsStatement(tables, queueName, now);
      const dead: string[] = [];
      for (const slot of slotRowsOf(rows)) {
        if (!slot.live) dead.push(slot.jobId);
        else {
          runningTotal++;
          const key = slot.concurrencyKey;
          if (key !== null) runningPerKey.set(key, (runningPerKey.get(key) ?? 0) + 1);
        }
      }
      for (const statement of deleteSlotsStatements(tables.slots, spelling, dead)) yield statement;
    }

    // 3. What started: the queue's budget in its limiter's window. A key rate limiter's buckets are
    // counted only for the keys of the candidates read (4.): the keys active in its window may be many
    // more than a claim reads.
    let queueStarts: BucketStarts | undefined;
    if (flow.rate) {
      const since = now - windowMs(flow.rate, flow.startGraceMs);
      const { rows } = yield startsPerBucketStatement(tables.rateStarts, flow.rate.name, since, ['']);
      queueStarts = bucketStartsOf(rows).get('');
    }
    const keyRate = flow.keyRate;
    const keyRateSince = keyRate ? now - windowMs(keyRate, flow.startGraceMs) : 0;
    const keyStarts = new Map<string, BucketStarts>();

    // 4. What may be taken: candidates in claim order, keys in turn.
    const queueRateLeft = flow.rate ? Math.max(0, flow.rate.limit - (queueStarts?.started ?? 0)) : Infinity;
    const budget = new Budget(flow, parameters.limit, runningTotal, runningPerKey, queueRateLeft, keyStarts);
    const dueBy = Math.min(parameters.dueBy, now);
    const groups = keyLimitGroups(flow);
    const filter = (window: number, lock: boolean, after?: CandidateFilter['after']): CandidateFilter => ({
      queueName,
      dueBy,
      now,
      excludedKeys: budget.excludedKeys(),
      ...(groups.length > 0 ? { keyLimits: { slots: tables.slots, groups } } : {}),
      ...(keyRate
        ? { keyRate: { rateStarts: tables.rateStarts, name: keyRate.name, since: keyRateSince, limit: keyRate.limit } }
        : {}),
      ...(after ? { after } : {}),
      window,
      lock,
    });
    // Counts the key rate limiter's starts of the keys of `rows` not counted yet (an IN list per chunk).
    function* countKeyStarts(rows: readonly Candidate[]): Generator<SqlStatement, void, StatementResult> {
      if (!keyRate) return;
      const keys = budget.uncountedKeys(rows);
      for (const chunk of chunked(keys, spelling.maxParameters - 2)) {
        const { rows: counted } = yield startsPerBucketStatement(tables.rateStarts, keyRate.name, keyRateSince, chunk);
        budget.countStarts(chunk, bucketStartsOf(counted));
      }
    }
    const chosen: Candidate[] = [];
    let leftOver = false;
    if (budget.remaining > 0) {
      const window = Math.max(WINDOW_PER_ROW * budget.remaining, MIN_WINDOW);
      // Without a key limit a key holds nothing back, so the rows read in claim order (priority, then
      // FIFO, as the plain claim takes them) are the fair choice: the keys still take turns among them,
      // but no read of other keys' rows is made (it would cost every claim of a globally limited backlog).
      const keyTurns = groups.length > 0 || keyRate !== undefined;
      const keysInSql = Math.min(
        MAX_EXCLUDED_KEYS,
        spelling.maxParameters - CANDIDATE_PARAMETERS - groups.reduce((sum, group) => sum + group.events.length, 0),
      );
      let otherKeyReads = 0;
      let after: CandidateFilter['after'];
      function* read(candidateFilter: CandidateFilter): Generator<SqlStatement, Candidate[], StatementResult> {
        const rows = candidatesOf((yield candidatesStatement(tables.pending, spelling, candidateFilter)).rows);
        yield* countKeyStarts(rows);
        const last = rows[rows.length - 1];
        if (last) after = { priority: last.priority, availableAt: last.availableAt, id: last.rawId };
        return rows;
      }
      // The first window holds a row the claim may take if any exists; a window that was full and
      // filtered down (keys this claim filled) is read on past, up to MAX_WINDOWS.
      for (let windows = 0; windows < MAX_WINDOWS && budget.remaining > 0; windows++) {
        const rows = yield* read(filter(window, true, after));
        const more = rows.length === window;
        // A busy key under its limit fills a window in claim order, and the keys behind its backlog
        // would wait for all of it: while the rows read would give the capacity to fewer keys than
        // could share it, read on past them leaving out every key read so far (and, when some were
        // read, the rows without a key), so each key with waiting rows takes its turn. Such a read
        // walks the claim-order index entries of the keys it leaves out before it finds another
        // key's row (linear in the busy key's backlog ahead of them, all of it when no other key
        // waits), and once it finds them it stops at the window's LIMIT.
        let othersMore = more;
        while (
          keyTurns &&
          othersMore &&
          otherKeyReads < MAX_OTHER_KEY_READS &&
          budget.remaining > budget.sharingKeys(rows)
        ) {
          const keysRead = new Set<string>(budget.excludedKeys());
          let unkeyed = false;
          for (const row of rows) {
            if (row.concurrencyKey === null) unkeyed = true;
            else keysRead.add(row.concurrencyKey);
          }
          // More keys than a statement names: more than the claim can give a turn to.
          if (keysRead.size > keysInSql) break;
          otherKeyReads++;
          const others = yield* read({
            ...filter(window, true, after),
            excludedKeys: [...keysRead],
            excludeUnkeyed: unkeyed,
          });
          rows.push(...others);
          othersMore = others.length === window;
        }
        // Turns over every row read: rank 1 of every key before rank 2 of any, within a rank claim order.
        const choice = chooseInTurns(rows, budget);
        chosen.push(...choice.chosen);
        leftOver ||= choice.leftOver;
        // A full window: rows of the keys read may wait past the last row read (of theirs or of others).
        if (!more) break;
        leftOver ||= budget.remaining === 0;
      }
    } else if (budget.rateBound) {
      // Out of the queue's rate budget: whether work waits at all (then nextStartAt), locking nothing.
      const probe = candidatesOf((yield candidatesStatement(tables.pending, spelling, filter(1, false))).rows);
      leftOver = probe.length > 0;
    }
    // Keys whose rate budget was spent before the claim were left out in SQL: when the claim has room
    // left, the first of their waiting rows tell when one of them can start (nextStartAt).
    if (keyRate && budget.remaining > 0) {
      const spent = filter(MIN_WINDOW, false);
      const probe = candidatesOf(
        (yield candidatesStatement(tables.pending, spelling, { ...spent, keyRate: { ...spent.keyRate!, only: true } }))
          .rows,
      );
      yield* countKeyStarts(probe);
      for (const row of probe) budget.allows(row);
    }

    const report: ClaimFlowReport = {};
    // When a held bucket frees again, its first starts in the window being those stamped at `firstAt`.
    const reportNextStart = (firstAt: number): void => {
      const at = nextStartAt(flow, firstAt, queueStarts, keyStarts, budget.rateBound && leftOver, budget.rateHeldKeys);
      if (at !== undefined) report.nextStartAt = at;
    };
    if (chosen.length === 0) {
      reportNextStart(now);
      if (unflushed) yield unflushed;
      return { rows: [], report };
    }

    // 5. Lease the chosen rows; their slots and starts; prune the limiters' old starts.
    chosen.sort(compareClaimOrder);
    const ids = chosen.map((row) => row.id);
    const lease = namedStatement<ClaimParameters>(`UPDATE ${tables.pending} SET ${claimAssignments(spelling)} `).bind(
      parameters,
    );
    const update: SqlStatement = {
      sql:
        `${lease.sql}WHERE id IN (${placeholders(ids.length)})` +
        (spelling.updateReturns ? ` RETURNING ${CLAIMED_COLUMNS}` : ''),
      parameters: [...lease.parameters, ...ids],
    };
    let { rows } = yield update;
    if (!spelling.updateReturns) {
      ({ rows } = yield {
        sql: `SELECT ${CLAIMED_COLUMNS} FROM ${tables.pending} WHERE id IN (${placeholders(ids.length)})`,
        parameters: ids,
      });
    }
    if (concurrencyLimited) {
      const slots: NewSlot[] = chosen.map((row) => ({ jobId: row.id, concurrencyKey: row.concurrencyKey }));
      for (const statement of insertSlotsStatements(tables.slots, spelling, queueName, leaseToken, slots)) {
        yield statement;
      }
    }
    if (lockedLimiters.size > 0) {
      // Old starts go first, so that what follows the stamp is only its INSERT and the commit.
      for (const limit of limitersOf(flow)) {
        const prune = pruneStartsStatement(
          tables.rateStarts,
          spelling,
          limit,
          flow.startGraceMs,
          lockedLimiters.get(limit.name)!,
        );
        if (prune) yield prune;
      }
      // The starts are stamped as late as the claim can: after its other statements, still under the
      // locks (the next take counts them at a later now), so the start grace covers only the INSERT,
      // the commit and the way back to the worker. Counted from `now`, the window took in no fewer
      // starts than it would from the stamp.
      const { rows: clock } = yield grantClockStatement(spelling);
      const stampedAt = Math.max(now, Number(clock[0]?.now ?? now));
      for (const limit of limitersOf(flow)) {
        const buckets: string[] = [];
        if (flow.rate?.name === limit.name) buckets.push(...chosen.map(() => ''));
        if (flow.keyRate?.name === limit.name) {
          for (const row of chosen) if (row.concurrencyKey !== null) buckets.push(row.concurrencyKey);
        }
        for (const statement of recordStartsStatements(tables.rateStarts, spelling, limit.name, buckets, stampedAt)) {
          yield statement;
        }
      }
      // Rows taken under a rate limit: the worker starts them within the start grace of the stamp. Both
      // readings are whole milliseconds (floored): the wait is at most their difference less one ms,
      // never more than it was, so the worker never thinks a late start is on time.
      Object.assign(report, { grantedAt: stampedAt, waitedMs: Math.max(0, stampedAt - waitStart - 1) });
      reportNextStart(stampedAt);
    } else reportNextStart(now);
    return { rows, report };
  };
}
