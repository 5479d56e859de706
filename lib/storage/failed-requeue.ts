import type { DataSource } from 'typeorm';
import { dialectFor } from './dialects/dialect-for.js';
import { type FailedRowFilter, requeueFailed } from './sql/failed-store.js';
import { workerTables } from './worker-tables.js';

/**
 * The failed store's retries: failed rows back in line as new pending rows, removed from the failed
 * store in the same transaction (see requeueFailed). The SQL behind FailedWorkerService.retry().
 */
export class FailedRequeue {
  constructor(private readonly dataSource: DataSource) {}

  /** Re-queues the failed rows that match `filter` in one transaction; resolves to how many. */
  requeue(filter: FailedRowFilter): Promise<number> {
    const dialect = dialectFor(this.dataSource);
    return dialect.atomically(requeueFailed(workerTables(this.dataSource), filter, dialect));
  }
}
