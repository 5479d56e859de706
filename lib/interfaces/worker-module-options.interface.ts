import type { InjectionToken, OptionalFactoryDependency, Provider, Type } from '@nestjs/common';
import type { RecurringEventDefinition } from './recurring-event.interface.js';
import type { DataSource } from 'typeorm';
import type { EventClass } from './base-event.interface.js';
import type { BackoffOption } from './backoff.interface.js';
import type { RateLimitOptions, RateLimitReference } from './flow-control.interface.js';
import type { RetentionOptions } from './job-state.interface.js';
import type { ILoggerService } from './logger.interface.js';
import type { IWorkerCreator } from './worker-creator.interface.js';
import type { IWorkerRepository } from './worker-repository.interface.js';

/** Options of one queue (and the `defaults` for queues not listed). */
export interface WorkerQueueOptions {
  /** Maximum total attempts of an event. Default 3. */
  retries?: number;
  /** Seconds before a failed event is due again. Default 0. */
  runAfterSeconds?: number;
  /** Milliseconds between polls of this queue. Default 1000. */
  pollIntervalMs?: number;
  /** Events of this queue run at once by one process. Default 1. */
  concurrency?: number;
  /**
   * Rows one claim takes (1–10,000); completions of a claim are deleted in one statement. Default:
   * concurrency.
   */
  batchSize?: number;
  /**
   * How the retry delay grows: 'fixed' (default), 'exponential', { type: 'exponential', maxSeconds,
   * jitter } or a function.
   */
  backoff?: BackoffOption;
  /** Seconds an attempt may run before it fails with EventTimeoutError. Default: no limit. */
  timeoutSeconds?: number;
  /**
   * Keep completed and cancelled events in the history (getJob, findJobs) instead of deleting them,
   * pruned by age and count: `true` or `{}` keeps them all, `{ maxAgeSeconds, maxCount }` bounds them.
   * Default false: success deletes the row. An event class's own keepCompleted wins.
   */
  keepCompleted?: boolean | RetentionOptions;
  /** Prune this queue's failed store by age and count. Default: failed events are kept until deleted. */
  keepFailed?: RetentionOptions;
  /**
   * At most this many events of the queue run at once over every process and machine on the database
   * (a positive integer). Default: no limit (each process runs up to its `concurrency`).
   */
  globalConcurrency?: number;
  /**
   * At most this many events with one concurrency key run at once over every process (a positive
   * integer; events without a key are not limited). The key comes from dispatch's `concurrencyKey`,
   * else `@QueueEvent({ concurrencyKey })`, else the event's `getConcurrencyKey()`. Keys take turns:
   * one key's backlog never starves the others. An event class's `keyConcurrency` wins.
   */
  keyConcurrency?: number;
  /** At most `limit` starts of the queue's events in any `intervalSeconds` window, over every process. */
  rateLimit?: RateLimitReference;
  /** At most `limit` starts per concurrency key in any `intervalSeconds` window, over every process. */
  keyRateLimit?: RateLimitReference;
}

/** The embedded database (SQLite through better-sqlite3). */
export interface WorkerSqliteOptions {
  type?: 'better-sqlite3';
  /** File path, or ':memory:'. Default `nestjs-workers.sqlite` in the working directory. */
  database?: string;
  /** How long a writer waits for the lock held by another process (ms). Default 5000. */
  busyTimeoutMs?: number;
  /** Create or update the queue tables at startup. Default true. */
  synchronize?: boolean;
}

/**
 * A PostgreSQL or MySQL/MariaDB server of the module's own (for the application's existing
 * DataSource use `dataSource` or the `dataSourceToken` extra instead). Needs the driver installed:
 * `pg` for postgres, `mysql2` for mysql and mariadb.
 */
export interface WorkerServerDatabaseOptions {
  type: 'postgres' | 'mysql' | 'mariadb';
  /** Connection URL, e.g. `postgres://user:secret@db:5432/app`; or host, port, … below. */
  url?: string;
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  database?: string;
  /** PostgreSQL schema of the queue tables. Default: the connection's search path (public). */
  schema?: string;
  /** TLS settings passed to the driver. */
  ssl?: boolean | Record<string, unknown>;
  /** Connections in this process's pool. Default 10. */
  poolSize?: number;
  /** Create or update the queue tables at startup. Default false (production: run the migrations). */
  synchronize?: boolean;
  /** Run the package's migrations (`workerMigrations(type)`) at startup. Default false. */
  migrationsRun?: boolean;
}

export interface WorkerModuleOptions {
  /** Where the queue tables live when the module opens its own DataSource. Default: a SQLite file. */
  database?: WorkerSqliteOptions | WorkerServerDatabaseOptions;
  /**
   * An initialized TypeORM DataSource of the application to keep the queue tables in (its entities
   * must include `workerEntitySchemas(type)`); the module neither migrates nor closes it.
   */
  dataSource?: DataSource;
  /** Per-queue options, by queue name; every queue named here is polled. */
  queues?: Record<string, WorkerQueueOptions>;
  /** Options of queues that are not listed in `queues`. */
  defaults?: WorkerQueueOptions;
  /** Event classes to register besides the @QueueEvent() ones. */
  events?: EventClass[];
  /**
   * Queued events to dispatch on cron schedules, once per slot across replicas (like
   * @RecurringEvent() on the class).
   */
  recurring?: RecurringEventDefinition[];
  /**
   * Poll every queue and start the recurring schedules at application bootstrap. Default true;
   * false: call runWorker() yourself (schedules do not run).
   */
  autoStart?: boolean;
  /**
   * PostgreSQL: hold one pooled connection that LISTENs for committed dispatches and polls their queue
   * at once, instead of at the next pollIntervalMs (which stays the fallback). Default true; other
   * databases poll only.
   */
  listen?: boolean;
  /** How long a claimed event stays leased to its worker (s). Default 30. */
  leaseSeconds?: number;
  /**
   * How often the leases of running events are extended (s), at most half of leaseSeconds. Default
   * leaseSeconds / 3.
   */
  heartbeatSeconds?: number;
  /** How long app.close() waits for running events (s). Default 10. */
  shutdownGraceSeconds?: number;
  /**
   * Largest payload a dispatch stores, in bytes of its JSON text (UTF-8); a larger one is refused
   * with UnserializablePayloadError and nothing is stored. Default 1 MiB (1048576), at most 1 GiB.
   * Above 16 MiB on MariaDB/MySQL, raise the server's max_allowed_packet too.
   */
  maxPayloadBytes?: number;
  /** Logger for the workers. Default: Nest's Logger. */
  logger?: ILoggerService;
  /**
   * Named rate limiters, shared by the queues that name them (`rateLimit: 'partner-api'`) and by
   * application code (`WorkerRateLimiter.take('partner-api')`, or `take('partner-api:acct_42')` for
   * one key's budget). Names are non-empty and contain no ':'.
   */
  rateLimits?: Record<string, RateLimitOptions>;
  /** How long the per-minute outcome counts are kept (s). Default 7 days. */
  throughputRetentionSeconds?: number;
  /**
   * How often one replica prunes the history, the failed store, the outcome counts and the rows of
   * processes gone (s). Default 60.
   */
  pruneIntervalSeconds?: number;
}

/** A replacement provider for the repository or the creator (the `provide` token is set for you). */
export type WorkerProviderOverride<T> =
  | { useClass: Type<T> }
  | { useExisting: InjectionToken }
  | { useValue: T }
  | { useFactory: (...args: never[]) => T | Promise<T>; inject?: (InjectionToken | OptionalFactoryDependency)[] };

/** Module-definition options, given beside the options (also to forRootAsync, outside the factory). */
export interface WorkerModuleExtras {
  /**
   * Register WorkerService and EventService globally. Default true. One instance per application may
   * be global (a second one is refused with DuplicateWorkerModuleError); further instances take
   * `false` and serve the module that imports them.
   */
  isGlobal?: boolean;
  /** Replaces the TypeORM repository (IWorkerRepository; leasing needs IWorkerQueueRepository). */
  workerRepository?: WorkerProviderOverride<IWorkerRepository>;
  /** Replaces the TypeORM creator. */
  workerCreator?: WorkerProviderOverride<IWorkerCreator>;
  /**
   * The application's DataSource to use, by injection token: `DataSource` (TypeOrmModule's default
   * connection) or `getDataSourceToken('name')` for a named one.
   */
  dataSourceToken?: InjectionToken;
  /** Providers available to the async options factory's `inject`. */
  extraProviders?: Provider[];
}

/** Implemented by a class given to forRootAsync({ useClass }) or ({ useExisting }). */
export interface WorkerOptionsFactory {
  createWorkerOptions(): WorkerModuleOptions | Promise<WorkerModuleOptions>;
}
