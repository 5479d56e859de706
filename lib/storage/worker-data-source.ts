import { DataSource } from 'typeorm';
import type { ResolvedDatabaseOptions } from '../worker.config.js';
import { workerEntitySchemas } from './entities/worker.entity.js';

/** Opens the embedded SQLite database: WAL (readers never block the writer) and a busy timeout. */
export async function openWorkerDataSource(options: ResolvedDatabaseOptions): Promise<DataSource> {
  const inMemory = options.database === ':memory:';
  const dataSource = new DataSource({
    type: 'better-sqlite3',
    database: options.database,
    entities: workerEntitySchemas('better-sqlite3'),
    synchronize: options.synchronize,
    timeout: options.busyTimeoutMs,
    enableWAL: !inMemory,
  });
  return dataSource.initialize();
}
