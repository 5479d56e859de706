import type { DataSource } from 'typeorm';

/**
 * Whether a dispatch may join a caller's transaction on this DataSource. Not on better-sqlite3:
 * TypeORM runs every better-sqlite3 query on one connection, so an open transaction there would
 * also take in the workers' claims and completions and every other dispatch of the process.
 */
export function joinsCallerTransactions(dataSource: DataSource): boolean {
  return dataSource.options.type !== 'better-sqlite3';
}
