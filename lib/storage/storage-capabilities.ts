import type { DataSource, EntityManager } from 'typeorm';
import { WorkerError } from '../errors/worker.error.js';
import { cannotJoinCallerTransaction } from '../worker.messages.js';
import { dialectFor } from './dialects/dialect-for.js';
import type { StorageCapabilities, WorkerDialect } from './dialects/worker-dialect.js';
import type { AtomicWork } from './sql/statement.js';

export type { StorageCapabilities } from './dialects/worker-dialect.js';

/**
 * What the database behind `dataSource` can do (joins a caller's transaction, can wake listening
 * workers, …): the one question the layers above storage ask instead of testing the database type.
 */
export function storageCapabilities(dataSource: DataSource): StorageCapabilities {
  return dialectFor(dataSource).capabilities;
}

/**
 * Runs `work` in the caller's open transaction (`manager`) where the dialect can join one; refuses
 * with a WorkerError where it cannot (SQLite, see StorageCapabilities.joinsCallerTransaction).
 */
export function runInCallerTransaction<T>(
  dialect: WorkerDialect,
  manager: EntityManager,
  work: AtomicWork<T>,
): Promise<T> {
  if (!dialect.within) throw new WorkerError(cannotJoinCallerTransaction(String(manager.connection.options.type)));
  return dialect.within(manager, work);
}
