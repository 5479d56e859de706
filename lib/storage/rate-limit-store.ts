import type { DataSource } from 'typeorm';
import type { ClaimRateLimit } from '../interfaces/flow-control.interface.js';
import { dialectFor } from './dialects/dialect-for.js';
import type { WorkerDialect } from './dialects/worker-dialect.js';
import { takeStart, type TakeResult } from './sql/rate-starts.js';
import { type WorkerTables, workerTables } from './worker-tables.js';

export type { TakeResult } from './sql/rate-starts.js';

/**
 * The rate limiters' storage behind WorkerRateLimiter: a take is one transaction under the limiter's
 * lock row (statements in sql/rate-starts), counted on the database's clock, so application code and
 * the claims of every process share one budget. The caller checks its input first.
 */
export class RateLimitStore {
  private readonly dialect: WorkerDialect;
  private readonly tables: WorkerTables;

  constructor(dataSource: DataSource) {
    this.dialect = dialectFor(dataSource);
    this.tables = workerTables(dataSource);
  }

  /**
   * Takes one start from `bucketKey`'s budget of the limiter ('' is its whole budget, else a
   * concurrency key's): granted if the bucket has fewer than `limit.limit` starts in the last
   * `limit.intervalMs + graceMs`, else refused with the database-clock instant (epoch ms) when its
   * oldest start leaves the window.
   */
  tryTake(limit: ClaimRateLimit, bucketKey: string, graceMs: number): Promise<TakeResult> {
    return this.dialect.atomically(takeStart(this.tables, this.dialect, limit, bucketKey, graceMs));
  }
}
