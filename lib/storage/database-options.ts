import {
  assertBoolean,
  assertInteger,
  assertKnownKeys,
  assertNonEmptyString,
  assertPlainObject,
  definedOnly,
} from '../common/worker-options.validation.js';
import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import type { WorkerServerDatabaseOptions } from '../interfaces/worker-module-options.interface.js';
import { DEFAULT_BUSY_TIMEOUT_MS, DEFAULT_SQLITE_FILE } from '../worker.defaults.js';

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

const SQLITE_KEYS = ['type', 'database', 'busyTimeoutMs', 'synchronize'] as const;
const SERVER_KEYS = [
  'type',
  'url',
  'host',
  'port',
  'username',
  'password',
  'database',
  'schema',
  'ssl',
  'poolSize',
  'synchronize',
  'migrationsRun',
] as const;
const SERVER_TYPES = ['postgres', 'mysql', 'mariadb'] as const;
/** An unquoted PostgreSQL identifier (NAMEDATALEN 64: at most 63 bytes; ASCII here, so 63 characters). */
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/** The module's `database` option validated and defaulted; every error names the field. */
export function resolveDatabaseOptions(value: unknown): ResolvedDatabaseOptions {
  const input = value ?? {};
  assertPlainObject('database', input);
  const type = input.type ?? 'better-sqlite3';
  if (type === 'better-sqlite3') return resolveSqlite(input);
  if (SERVER_TYPES.includes(type as (typeof SERVER_TYPES)[number])) return resolveServer(input);
  throw new InvalidWorkerOptionsError(
    'database.type',
    `must be one of better-sqlite3, ${SERVER_TYPES.join(', ')} (got ${JSON.stringify(type)})`,
  );
}

function resolveSqlite(input: Record<string, unknown>): ResolvedSqliteOptions {
  assertKnownKeys('database', input, SQLITE_KEYS);
  const resolved = {
    type: 'better-sqlite3' as const,
    database: DEFAULT_SQLITE_FILE,
    busyTimeoutMs: DEFAULT_BUSY_TIMEOUT_MS,
    synchronize: true,
    ...definedOnly(input),
  };
  assertNonEmptyString('database.database', resolved.database);
  assertInteger('database.busyTimeoutMs', resolved.busyTimeoutMs, 0);
  assertBoolean('database.synchronize', resolved.synchronize);
  return resolved as ResolvedSqliteOptions;
}

function resolveServer(input: Record<string, unknown>): ResolvedServerDatabaseOptions {
  assertKnownKeys('database', input, SERVER_KEYS);
  const resolved = {
    synchronize: false,
    migrationsRun: false,
    ...definedOnly(input),
  } as ResolvedServerDatabaseOptions;
  if (resolved.url === undefined && resolved.host === undefined) {
    throw new InvalidWorkerOptionsError('database.url', `is required for ${resolved.type} (or give database.host)`);
  }
  for (const field of ['url', 'host', 'username', 'database', 'schema'] as const) {
    if (resolved[field] !== undefined) assertNonEmptyString(`database.${field}`, resolved[field]);
  }
  if (resolved.password !== undefined && typeof resolved.password !== 'string') {
    throw new InvalidWorkerOptionsError('database.password', 'must be a string');
  }
  if (resolved.schema !== undefined && resolved.type !== 'postgres') {
    throw new InvalidWorkerOptionsError(
      'database.schema',
      `is a PostgreSQL option (type is ${resolved.type}): use database.database`,
    );
  }
  // TypeORM's synchronize writes the schema into its SQL as given: only a plain identifier is safe there.
  if (resolved.schema !== undefined && !SCHEMA_NAME.test(resolved.schema)) {
    throw new InvalidWorkerOptionsError(
      'database.schema',
      'must be a plain PostgreSQL identifier: a letter or _, then letters, digits, _ or $, at most 63 ' +
        `(got ${JSON.stringify(resolved.schema)})`,
    );
  }
  if (resolved.port !== undefined) assertInteger('database.port', resolved.port, 1);
  if (resolved.poolSize !== undefined) assertInteger('database.poolSize', resolved.poolSize, 1);
  if (resolved.ssl !== undefined && typeof resolved.ssl !== 'boolean') assertPlainObject('database.ssl', resolved.ssl);
  assertBoolean('database.synchronize', resolved.synchronize);
  assertBoolean('database.migrationsRun', resolved.migrationsRun);
  return resolved;
}
