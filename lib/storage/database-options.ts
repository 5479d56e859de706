import type { WorkerServerDatabaseOptions } from '../interfaces/worker-module-options.interface.js';

/** The embedded SQLite database, as the module's config resolved it. */
export interface ResolvedSqliteOptions {
  type: 'better-sqlite3';
  database: string;
  busyTimeoutMs: number;
  synchronize: boolean;
}

/** A PostgreSQL or MySQL/MariaDB server the module opens a DataSource to, as its config resolved it. */
export type ResolvedServerDatabaseOptions = WorkerServerDatabaseOptions & {
  synchronize: boolean;
  migrationsRun: boolean;
};

/** What openWorkerDataSource opens: validated and defaulted by the module's config. */
export type ResolvedDatabaseOptions = ResolvedSqliteOptions | ResolvedServerDatabaseOptions;
