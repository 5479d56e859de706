import { WorkerError } from '../../errors/worker.error.js';
import type { ClaimFlowLimits, ClaimFlowReport, ClaimRateLimit } from '../../interfaces/flow-control.interface.js';
import { flowClaimMessages } from '../../worker.messages.js';
import type { WorkerTables } from '../worker-tables.js';
import type { RawWorkerRow } from '../worker-row.js';
import { CLAIM_ORDER, CLAIMED_COLUMNS, claimAssignments, type ClaimParameters, compareClaimOrder } from './claim.js';
import type { FlowSpelling } from './flow-spelling.js';
import { namedStatement } from './named-parameters.js';
import {
  type BucketStarts,
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
import { type AtomicWork, placeholders, type SqlStatement } from './statement.js';

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

/** The queue's lock row with the paused flag, and the database's now read with it (stable for the claim). */
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

/** What the candidate read leaves out and how far it reads. */
export interface CandidateFilter {
  queueName: string;
  /** The pass start capped at the claim's now. */
  dueBy: number;
  now: number;
  /** Keys that can take nothing more (full or out of rate budget): excluded in SQL. */
  excludedKeys: readonly string[];
  /** Rows an earlier window of this claim read already. */
  excludedIds: readonly string[];
  window: number;
  /** Lock what is read, passing over rows others hold (a read only to know whether work waits: false). */
  lock: boolean;
}

/**
 * The claimable rows of the queue in claim order, through the claim-order index (queue_name,
 * priority, available_at, id): the same conditions as the plain claim (claimableCondition), with the
 * claim's now as a parameter (the slots were judged live or dead at that same instant), minus the
 * keys that can take nothing, at most `window` rows. On the servers the rows read are locked,
 * passing over rows other transactions hold.
 */
export function candidatesStatement(pending: string, spelling: FlowSpelling, filter: CandidateFilter): SqlStatement {
  const keys = filter.excludedKeys;
  const ids = filter.excludedIds;
  return {
    sql:
      `SELECT id, event_name, concurrency_key, priority, available_at FROM ${pending}${spelling.claimIndexHint} ` +
      'WHERE queue_name = ? AND available_at <= ? AND deleted_at IS NULL ' +
      'AND (lease_expires_at IS NULL OR lease_expires_at <= ?)' +
      (keys.length > 0
        ? ` AND (concurrency_key IS NULL OR concurrency_key NOT IN (${placeholders(keys.length)}))`
        : '') +
      (ids.length > 0 ? ` AND id NOT IN (${placeholders(ids.length)})` : '') +
      ` ORDER BY ${CLAIM_ORDER} LIMIT ?${filter.lock ? spelling.lockSkippingClause : ''}`,
    parameters: [filter.queueName, filter.dueBy, filter.now, ...keys, ...ids, filter.window],
  };
}

function candidatesOf(rows: RawWorkerRow[]): Candidate[] {
  return rows.map((row) => ({
    id: String(row.id),
    eventName: String(row.event_name),
    concurrencyKey:
      row.concurrency_key === null || row.concurrency_key === undefined ? null : String(row.concurrency_key),
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

  /** Keys that can take no row at all: the candidate read leaves them out. */
  excludedKeys(): string[] {
    const keys = new Set<string>([...this.running.keys(), ...this.keyStarts.keys(), ...this.takenPerKey.keys()]);
    const max = this.maxKeyLimit();
    return [...keys].filter(
      (key) =>
        key !== '' &&
        ((max !== undefined && (this.running.get(key) ?? 0) + this.taken(key) >= max) || this.rateSpent(key)),
    );
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
  now: number,
  queueStarts: BucketStarts | undefined,
  keyStarts: Map<string, BucketStarts>,
  heldByQueueRate: boolean,
  heldKeys: Iterable<string>,
): number | undefined {
  const instants: number[] = [];
  // A bucket that had no start in the window before this claim gets its first ones at now.
  const oldest = (starts: BucketStarts | undefined): number => (starts && starts.started > 0 ? starts.oldestAt : now);
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
 * turn within every limit (a second window when the first was filtered down); lease the chosen rows,
 * insert their slots and starts; tell when a rate limit that held rows back frees budget again.
 */
export function limitedClaim(
  tables: ClaimTables,
  spelling: FlowSpelling,
  parameters: ClaimParameters,
  flow: ClaimFlowLimits,
): AtomicWork<LimitedClaimResult> {
  const { queueName, leaseToken } = parameters;
  const concurrencyLimited =
    flow.globalConcurrency !== undefined ||
    flow.keyConcurrency !== undefined ||
    Object.keys(flow.keyConcurrencyByEvent ?? {}).length > 0;
  return function* () {
    // 1. The queue's lock row, and the claim's now.
    let { rows: locked } = yield lockQueueStatement(tables, spelling, queueName);
    if (locked.length === 0) {
      yield ensureQueueStatement(tables, spelling, queueName);
      ({ rows: locked } = yield lockQueueStatement(tables, spelling, queueName));
    }
    const [queue] = locked;
    if (!queue) throw new WorkerError(flowClaimMessages.lockRowMissing(tables.queues, queueName));
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
    const now = Number(queue.now);

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

    // 3. What started: each limiter locked (in name order), its starts in the window per bucket.
    const lockedLimiters = new Map<string, LockedLimiter>();
    let queueStarts: BucketStarts | undefined;
    let keyStarts = new Map<string, BucketStarts>();
    for (const limit of limitersOf(flow)) {
      lockedLimiters.set(limit.name, yield* lockLimiter(tables, spelling, limit.name));
      const since = now - windowMs(limit, flow.startGraceMs);
      // Every bucket when the limiter counts per key (its whole budget '' among them), else '' alone.
      const buckets = flow.keyRate?.name === limit.name ? undefined : [''];
      const { rows } = yield startsPerBucketStatement(tables.rateStarts, limit.name, since, buckets);
      const starts = bucketStartsOf(rows);
      if (flow.rate?.name === limit.name) queueStarts = starts.get('');
      if (flow.keyRate?.name === limit.name) {
        keyStarts = starts;
        if (flow.rate?.name !== limit.name) keyStarts.delete('');
      }
    }

    // 4. What may be taken: candidates in claim order, keys in turn.
    const queueRateLeft = flow.rate ? Math.max(0, flow.rate.limit - (queueStarts?.started ?? 0)) : Infinity;
    const budget = new Budget(flow, parameters.limit, runningTotal, runningPerKey, queueRateLeft, keyStarts);
    const dueBy = Math.min(parameters.dueBy, now);
    const filter = (excludedIds: string[], window: number, lock: boolean): CandidateFilter => ({
      queueName,
      dueBy,
      now,
      excludedKeys: budget.excludedKeys(),
      excludedIds,
      window,
      lock,
    });
    const chosen: Candidate[] = [];
    let leftOver = false;
    if (budget.remaining > 0) {
      const window = Math.max(WINDOW_PER_ROW * budget.remaining, MIN_WINDOW);
      const first = candidatesOf((yield candidatesStatement(tables.pending, spelling, filter([], window, true))).rows);
      let choice = chooseInTurns(first, budget);
      chosen.push(...choice.chosen);
      leftOver = choice.leftOver;
      // The window was full and filtered down (a busy key's backlog, keys that filled up): read on
      // past it once, without the keys that can take nothing now.
      if (budget.remaining > 0 && first.length === window) {
        const seen = first.map((row) => row.id);
        const second = candidatesOf(
          (yield candidatesStatement(tables.pending, spelling, filter(seen, window, true))).rows,
        );
        choice = chooseInTurns(second, budget);
        chosen.push(...choice.chosen);
        leftOver ||= choice.leftOver;
      }
    } else if (budget.rateBound) {
      // Out of the queue's rate budget: whether work waits at all (then nextStartAt), locking nothing.
      const probe = candidatesOf((yield candidatesStatement(tables.pending, spelling, filter([], 1, false))).rows);
      leftOver = probe.length > 0;
    }

    const report: ClaimFlowReport = {};
    const at = nextStartAt(flow, now, queueStarts, keyStarts, budget.rateBound && leftOver, [
      ...budget.rateHeldKeys,
      ...budget.excludedKeys().filter((key) => keyRateSpent(flow, keyStarts, key)),
    ]);
    if (at !== undefined) report.nextStartAt = at;
    if (chosen.length === 0) {
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
    for (const limit of limitersOf(flow)) {
      const buckets: string[] = [];
      if (flow.rate?.name === limit.name) buckets.push(...chosen.map(() => ''));
      if (flow.keyRate?.name === limit.name) {
        for (const row of chosen) if (row.concurrencyKey !== null) buckets.push(row.concurrencyKey);
      }
      for (const statement of recordStartsStatements(tables.rateStarts, spelling, limit.name, buckets, now)) {
        yield statement;
      }
      const prune = pruneStartsStatement(
        tables.rateStarts,
        spelling,
        limit,
        flow.startGraceMs,
        lockedLimiters.get(limit.name)!,
      );
      if (prune) yield prune;
    }
    return { rows, report };
  };
}

/** Whether the key's rate budget was spent before the claim (a key the candidate read left out for it). */
function keyRateSpent(flow: ClaimFlowLimits, keyStarts: Map<string, BucketStarts>, key: string): boolean {
  return flow.keyRate !== undefined && (keyStarts.get(key)?.started ?? 0) >= flow.keyRate.limit;
}
