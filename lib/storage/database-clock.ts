import type { DataSource, EntityManager } from 'typeorm';
import { dialectFor } from './dialects/dialect-for.js';

/**
 * How often a process measures its offset to the database's clock again. Clocks kept by NTP drift
 * by milliseconds a day (and the monotonic clock with them); a set wall clock does not matter at all.
 */
export const CLOCK_REFRESH_MS = 60_000;

/**
 * The database's clock as this process sees it: a reading of the server's clock (`SELECT <database
 * now>`), advanced by the process's monotonic clock, and read again every CLOCK_REFRESH_MS.
 *
 * Lease decisions (claimable or not, lease expiry, renewal) never use it: they are computed inside
 * the SQL from the database's own clock (WorkerDialect.nowSql), exactly. Due times are different:
 * they are written by every path that stores a row (dispatch, bulk inserts, larascript-events' model API,
 * retries, re-queued failed rows) and `runAt` is an absolute instant worked out in JavaScript, so
 * they are stamped with this estimate instead of being rewritten in each statement. Its error is
 * bounded by one round trip of the measurement: the offset taken is the lower bound of what the
 * measurement allows (the database read its clock at the latest when the answer arrived), so a
 * time stamped here is never ahead of the database's clock and at most one round trip (typically
 * well under a millisecond on a LAN) behind it. A due time is therefore never late, at worst that
 * much early, and the start of a pass (the due rows `runOnce` takes) includes every row stamped
 * before it by any process.
 */
export class DatabaseClock {
  /**
   * The database's time at the last measurement and performance.now() then. Time since is counted
   * on the monotonic clock, so a wall clock that is set (NTP step, VM resume) changes nothing.
   */
  private anchor?: { databaseMs: number; at: number };
  private roundTripMs = 0;
  private measuring?: Promise<void>;

  constructor(
    /**
     * Reads the database's clock (epoch ms) through `manager`, or the pool without one; undefined:
     * the process's own clock is the database's.
     */
    private readonly read: ((manager?: EntityManager) => Promise<number>) | undefined,
    private readonly refreshMs = CLOCK_REFRESH_MS,
  ) {}

  /** The database's time now (epoch ms), from the last measurement; call sync() first for a fresh one. */
  now(): number {
    // Whole milliseconds, as every time column stores them.
    return this.anchor ? this.anchor.databaseMs + Math.floor(performance.now() - this.anchor.at) : Date.now();
  }

  /** The last measured offset (database minus process, ms) and the round trip that bounds its error. */
  get measurement(): { offsetMs: number; roundTripMs: number } {
    return { offsetMs: this.now() - Date.now(), roundTripMs: this.roundTripMs };
  }

  /**
   * Measures the offset again when the last measurement is older than the refresh interval. With
   * `manager` (a caller's transaction) it reads through that connection, so it never waits for
   * another one of a pool the caller may be holding.
   */
  async sync(manager?: EntityManager): Promise<void> {
    if (!this.read || (this.anchor && performance.now() - this.anchor.at < this.refreshMs)) return;
    this.measuring ??= this.measure(manager).finally(() => (this.measuring = undefined));
    await this.measuring;
  }

  /** sync(), then now(). */
  async current(manager?: EntityManager): Promise<number> {
    await this.sync(manager);
    return this.now();
  }

  private async measure(manager: EntityManager | undefined): Promise<void> {
    const sent = performance.now();
    const databaseNow = await this.read!(manager);
    const received = performance.now();
    // The database read its clock at the latest when the answer arrived: anchoring its reading
    // there is the lower bound, so now() is never ahead of the database.
    this.anchor = { databaseMs: Math.floor(databaseNow), at: received };
    this.roundTripMs = received - sent;
  }
}

const clocks = new WeakMap<DataSource, DatabaseClock>();

/** The database clock of this DataSource, one per DataSource and process. */
export function databaseClock(dataSource: DataSource): DatabaseClock {
  let clock = clocks.get(dataSource);
  if (!clock) {
    const dialect = dialectFor(dataSource);
    const read = async (manager?: EntityManager): Promise<number> => {
      // A manager of another DataSource is refused later by the write itself; the clock reads the pool then.
      const through = manager?.connection === dataSource ? manager : undefined;
      const [row] = await dialect.query({ sql: `SELECT ${dialect.nowSql} AS db_now`, parameters: [] }, through);
      return Number(row?.db_now);
    };
    // An embedded database reads the clock of the process it runs in: nothing to measure.
    clock = new DatabaseClock(dialect.capabilities.embeddedClock ? undefined : read);
    clocks.set(dataSource, clock);
  }
  return clock;
}
