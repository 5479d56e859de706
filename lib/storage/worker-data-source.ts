import { DataSource, type DataSourceOptions, DriverPackageNotInstalledError } from 'typeorm';
import { MissingDatabaseDriverError, MissingWorkerTablesError } from '../errors/startup.error.js';
import { WorkerError } from '../errors/worker.error.js';
import type { ResolvedDatabaseOptions, ResolvedServerDatabaseOptions } from './database-options.js';
import {
  isSupportedDatabaseType,
  type SupportedDatabaseType,
  UnsupportedDatabaseError,
} from './dialects/worker-dialect.js';
import { collationForServer, MYSQL_EXACT_COLLATION, workerEntitySchemas } from './entities/worker.entity.js';
import { workerMigrations } from './migrations/index.js';
import { missingWorkerSchema, WORKER_ENTITIES } from './worker-tables.js';

/** DataSources this package opened, and so closes; an application's own DataSource is left alone. */
const openedByWorkers = new WeakSet<DataSource>();

/**
 * Opens the module's own DataSource: the embedded SQLite file (WAL, so readers never block the
 * writer, and a busy timeout) or a PostgreSQL / MySQL / MariaDB server.
 */
export async function openWorkerDataSource(options: ResolvedDatabaseOptions): Promise<DataSource> {
  // Type 'mysql' runs its migrations and synchronize itself, once the server's collation is known.
  const dataSource = createDataSource(
    options,
    options.type === 'mysql' ? { synchronize: false, migrationsRun: false } : {},
  );
  await dataSource.initialize();
  openedByWorkers.add(dataSource);
  try {
    if (options.type === 'mysql') await prepareMysqlTables(dataSource, options);
    // Tables that synchronize or the migrations just created need no look.
    const createsTables = options.synchronize || (options.type !== 'better-sqlite3' && options.migrationsRun);
    if (!createsTables) await assertWorkerTables(dataSource);
  } catch (error) {
    // The caller never gets the DataSource, so nothing else could close its connections.
    await dataSource.destroy();
    throw error;
  }
  return dataSource;
}

/** The packages TypeORM loads for each type, as the install command spells them. */
const DRIVER_PACKAGES: Record<SupportedDatabaseType, { name: string; spec: string }> = {
  'better-sqlite3': { name: 'better-sqlite3', spec: 'better-sqlite3@12' },
  postgres: { name: 'pg', spec: 'pg' },
  mysql: { name: 'mysql2', spec: 'mysql2' },
  mariadb: { name: 'mysql2', spec: 'mysql2' },
};

/** TypeORM loads the driver package when the DataSource is constructed: a missing one fails here. */
function createDataSource(options: ResolvedDatabaseOptions, overrides: Partial<DataSourceOptions>): DataSource {
  try {
    return new DataSource({ ...dataSourceOptions(options), ...overrides } as DataSourceOptions);
  } catch (error) {
    if (!(error instanceof DriverPackageNotInstalledError)) throw error;
    const { name, spec } = DRIVER_PACKAGES[options.type];
    throw new MissingDatabaseDriverError(options.type, name, spec, error);
  }
}

/**
 * Fails startup when the queue tables, or columns of later migrations, are missing: the workers would
 * otherwise start and fail every poll with "relation does not exist" (or "column … does not exist")
 * until someone reads the logs.
 */
export async function assertWorkerTables(dataSource: DataSource): Promise<void> {
  const missing = await missingWorkerSchema(dataSource);
  if (missing.tables.length + missing.columns.length > 0)
    throw new MissingWorkerTablesError(dataSource.options.type, missing.tables, missing.columns);
}

/**
 * Type 'mysql' may reach a MariaDB server, which has no utf8mb4_0900_bin: the server is asked first
 * and the name columns take its exact collation before synchronize creates them (the migrations ask
 * it the same way). Then migrations and synchronize run in TypeORM's own order.
 */
async function prepareMysqlTables(dataSource: DataSource, options: ResolvedServerDatabaseOptions): Promise<void> {
  const [{ version }] = (await dataSource.query('SELECT VERSION() AS version')) as [{ version: string }];
  const collation = collationForServer(version);
  for (const column of dataSource.entityMetadatas.flatMap((metadata) => metadata.columns)) {
    if (column.collation === MYSQL_EXACT_COLLATION) column.collation = collation;
  }
  if (options.migrationsRun) await dataSource.runMigrations();
  if (options.synchronize) await dataSource.synchronize();
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

/**
 * Checks an application's DataSource before the queue uses it, naming what is missing. Its tables are
 * always looked for: whether its own migrations include the package's cannot be told from its options.
 */
export async function assertUsableDataSource(dataSource: DataSource): Promise<DataSource> {
  const type = dataSource.options.type;
  if (!isSupportedDatabaseType(type)) throw new UnsupportedDatabaseError(type);
  if (type === 'better-sqlite3') {
    // One shared connection: the application's transactions would absorb (and could roll back) the
    // queue's writes.
    throw new WorkerError(
      'WorkerModule cannot share a better-sqlite3 DataSource with the application: TypeORM runs all its ' +
        "queries on one connection, so the application's transactions would take in the queue's writes. " +
        'Let the module open its own SQLite file (the database option), or share a PostgreSQL or ' +
        'MySQL/MariaDB DataSource',
    );
  }
  if (!dataSource.isInitialized) {
    throw new WorkerError(
      'The DataSource given to WorkerModule is not initialized: call dataSource.initialize() first',
    );
  }
  if (WORKER_ENTITIES.some((entity) => !dataSource.hasMetadata(entity))) {
    throw new WorkerError(
      'The DataSource given to WorkerModule has no queue entities: ' +
        `add ...workerEntitySchemas('${type}') to its entities ` +
        `(or TypeOrmModule.forFeature(workerEntitySchemas('${type}')) with autoLoadEntities)`,
    );
  }
  await assertWorkerTables(dataSource);
  return dataSource;
}
