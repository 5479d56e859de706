import type { DataSource } from 'typeorm';
import { dialectFor } from './dialects/dialect-for.js';
import { isSupportedDatabaseType } from './dialects/worker-dialect.js';

/**
 * Whether a dispatch may join a caller's transaction on this DataSource (see
 * StorageCapabilities.joinsCallerTransaction: not on SQLite). A DataSource of a database this package
 * does not store in is not refused here: dispatch then names the mismatch of the two DataSources.
 */
export function joinsCallerTransactions(dataSource: DataSource): boolean {
  return (
    !isSupportedDatabaseType(dataSource.options.type) || dialectFor(dataSource).capabilities.joinsCallerTransaction
  );
}
