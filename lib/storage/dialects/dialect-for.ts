import type { DataSource } from 'typeorm';
import { workerTables } from '../worker-tables.js';
import { MysqlWorkerDialect } from './mysql.dialect.js';
import { PostgresWorkerDialect } from './postgres.dialect.js';
import { SqliteWorkerDialect } from './sqlite.dialect.js';
import { type StorageCapabilities, UnsupportedDatabaseError, type WorkerDialect } from './worker-dialect.js';

const dialects = new WeakMap<DataSource, WorkerDialect>();

/** The claim path and statements for this DataSource's database (built once per DataSource). */
export function dialectFor(dataSource: DataSource): WorkerDialect {
  let dialect = dialects.get(dataSource);
  if (!dialect) {
    dialect = createDialect(dataSource);
    dialects.set(dataSource, dialect);
  }
  return dialect;
}

function createDialect(dataSource: DataSource): WorkerDialect {
  const type = dataSource.options.type;
  const tables = workerTables(dataSource);
  switch (type) {
    case 'better-sqlite3':
      return new SqliteWorkerDialect(dataSource, tables);
    case 'postgres':
      return new PostgresWorkerDialect(dataSource, tables);
    case 'mysql':
    case 'mariadb':
      return new MysqlWorkerDialect(dataSource, tables);
    default:
      throw new UnsupportedDatabaseError(type);
  }
}

/**
 * What a database of this TypeORM type can do, without building its dialect (which needs the queue
 * entities on the DataSource); undefined for a type this package does not store in.
 */
export function capabilitiesOf(type: unknown): StorageCapabilities | undefined {
  switch (type) {
    case 'better-sqlite3':
      return SqliteWorkerDialect.capabilities;
    case 'postgres':
      return PostgresWorkerDialect.capabilities;
    case 'mysql':
    case 'mariadb':
      return MysqlWorkerDialect.capabilities;
    default:
      return undefined;
  }
}
