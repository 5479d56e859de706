import { DataSource, type DataSourceOptions } from 'typeorm';
import { WorkerError } from '../errors/worker.error.js';
import type { ResolvedDatabaseOptions, ResolvedServerDatabaseOptions } from '../worker.config.js';
import { isSupportedDatabaseType, UnsupportedDatabaseError } from './dialects/worker-dialect.js';
import {
  collationForServer,
  FailedWorkerEntity,
  MYSQL_EXACT_COLLATION,
  WorkerEntity,
  workerEntitySchemas,
  WorkerScheduleEntity,
} from './entities/worker.entity.js';
import { workerMigrations } from './migrations/index.js';

/** DataSources this package opened, and so closes; an application's own DataSource is left alone. */
const openedByWorkers = new WeakSet<DataSource>();

/**
 * Opens the module's own DataSource: the embedded SQLite file (WAL, so readers never block the
 * writer, and a busy timeout) or a PostgreSQL / MySQL / MariaDB server.
 */
export async function openWorkerDataSource(options: ResolvedDatabaseOptions): Promise<DataSource> {
  if (options.type === 'mysql') return openMysqlDataSource(options);
  const dataSource = new DataSource(dataSourceOptions(options));
  await dataSource.initialize();
  openedByWorkers.add(dataSource);
  return dataSource;
}

/**
 * Type 'mysql' may reach a MariaDB server, which has no utf8mb4_0900_bin: the server is asked first
 * and the name columns take its exact collation before synchronize creates them (the migrations ask
 * it the same way). Then migrations and synchronize run in TypeORM's own order.
 */
async function openMysqlDataSource(options: ResolvedServerDatabaseOptions): Promise<DataSource> {
  const dataSource = new DataSource({ ...dataSourceOptions(options), synchronize: false, migrationsRun: false });
  await dataSource.initialize();
  openedByWorkers.add(dataSource);
  try {
    const [{ version }] = (await dataSource.query('SELECT VERSION() AS version')) as [{ version: string }];
    const collation = collationForServer(version);
    for (const column of dataSource.entityMetadatas.flatMap((metadata) => metadata.columns)) {
      if (column.collation === MYSQL_EXACT_COLLATION) column.collation = collation;
    }
    if (options.migrationsRun) await dataSource.runMigrations();
    if (options.synchronize) await dataSource.synchronize();
  } catch (error) {
    await dataSource.destroy();
    throw error;
  }
  return dataSource;
}

export function isOpenedByWorkers(dataSource: DataSource): boolean {
  return openedByWorkers.has(dataSource);
}

function dataSourceOptions(options: ResolvedDatabaseOptions): DataSourceOptions {
  if (options.type === 'better-sqlite3') {
    return {
      type: 'better-sqlite3',
      database: options.database,
      entities: workerEntitySchemas('better-sqlite3'),
      synchronize: options.synchronize,
      timeout: options.busyTimeoutMs,
      enableWAL: options.database !== ':memory:',
    };
  }
  const { type, url, host, port, username, password, database, ssl, poolSize, synchronize, migrationsRun } = options;
  const shared = {
    url,
    host,
    port,
    username,
    password,
    database,
    ssl,
    poolSize,
    entities: workerEntitySchemas(type),
    migrations: workerMigrations(type),
    // The package's own migrations table, so it never mixes with (or replays) the application's.
    migrationsTableName: 'nestjs_workers_migrations',
    synchronize,
    migrationsRun,
  };
  return type === 'postgres' ? { type, schema: options.schema, ...shared } : { type, ...shared };
}

/** Checks an application's DataSource before the queue uses it, naming what is missing. */
export function assertUsableDataSource(dataSource: DataSource): DataSource {
  const type = dataSource.options.type;
  if (!isSupportedDatabaseType(type)) throw new UnsupportedDatabaseError(type);
  if (type === 'better-sqlite3') {
    // One shared connection: the application's transactions would absorb (and could roll back) the queue's writes.
    throw new WorkerError(
      'WorkerModule cannot share a better-sqlite3 DataSource with the application: TypeORM runs all its queries on one ' +
        'connection, so the application\'s transactions would take in the queue\'s writes. Let the module open its own ' +
        'SQLite file (the database option), or share a PostgreSQL or MySQL/MariaDB DataSource',
    );
  }
  if (!dataSource.isInitialized) {
    throw new WorkerError('The DataSource given to WorkerModule is not initialized: call dataSource.initialize() first');
  }
  if ([WorkerEntity, FailedWorkerEntity, WorkerScheduleEntity].some((entity) => !dataSource.hasMetadata(entity))) {
    throw new WorkerError(
      `The DataSource given to WorkerModule has no queue entities: add ...workerEntitySchemas('${type}') to its entities ` +
        `(or TypeOrmModule.forFeature(workerEntitySchemas('${type}')) with autoLoadEntities)`,
    );
  }
  return dataSource;
}
