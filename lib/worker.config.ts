import type { EventClass } from './events/base-event.js';
import { InvalidWorkerOptionsError } from './errors/worker.error.js';
import type { ILoggerService } from './interfaces/logger.interface.js';
import type { WorkerModuleOptions, WorkerQueueOptions } from './interfaces/worker-module-options.interface.js';
import {
  assertBoolean,
  assertHeartbeat,
  assertInteger,
  assertKnownKeys,
  assertNonEmptyString,
  assertNumber,
  assertPlainObject,
  assertRetrySettings,
} from './processing/worker-options.validation.js';
import {
  DEFAULT_BUSY_TIMEOUT_MS,
  DEFAULT_CONCURRENCY,
  DEFAULT_LEASE_SECONDS,
  DEFAULT_POLL_INTERVAL_MS,
  DEFAULT_RETRIES,
  DEFAULT_RUN_AFTER_SECONDS,
  DEFAULT_SHUTDOWN_GRACE_SECONDS,
  DEFAULT_SQLITE_FILE,
  HEARTBEATS_PER_LEASE,
} from './worker.constants.js';

export type ResolvedQueueOptions = Required<WorkerQueueOptions>;

export interface ResolvedDatabaseOptions {
  type: 'better-sqlite3';
  database: string;
  busyTimeoutMs: number;
  synchronize: boolean;
}

/** Module options validated and defaulted; what the module's providers read. */
export interface ResolvedWorkerConfig {
  database: ResolvedDatabaseOptions;
  queues: ReadonlyMap<string, ResolvedQueueOptions>;
  defaults: ResolvedQueueOptions;
  events: EventClass[];
  autoStart: boolean;
  leaseSeconds: number;
  heartbeatSeconds: number;
  shutdownGraceSeconds: number;
  logger?: ILoggerService;
  queueOptions(queueName: string): ResolvedQueueOptions;
}

const MODULE_KEYS = ['database', 'queues', 'defaults', 'events', 'autoStart', 'leaseSeconds', 'heartbeatSeconds', 'shutdownGraceSeconds', 'logger'] as const;
const QUEUE_KEYS = ['retries', 'runAfterSeconds', 'pollIntervalMs', 'concurrency'] as const;
const DATABASE_KEYS = ['type', 'database', 'busyTimeoutMs', 'synchronize'] as const;

/** Validates module options at startup; every error names the offending field. */
export function resolveWorkerConfig(options: WorkerModuleOptions | undefined): ResolvedWorkerConfig {
  const input: WorkerModuleOptions = options ?? {};
  const raw: unknown = input;
  assertPlainObject('WorkerModule options', raw);
  assertKnownKeys('', raw, MODULE_KEYS);

  const builtIn: ResolvedQueueOptions = {
    retries: DEFAULT_RETRIES,
    runAfterSeconds: DEFAULT_RUN_AFTER_SECONDS,
    pollIntervalMs: DEFAULT_POLL_INTERVAL_MS,
    concurrency: DEFAULT_CONCURRENCY,
  };
  const defaults = input.defaults === undefined ? builtIn : resolveQueue('defaults', input.defaults, builtIn);

  const queues = new Map<string, ResolvedQueueOptions>();
  if (input.queues !== undefined) {
    assertPlainObject('queues', input.queues);
    for (const [queueName, queueOptions] of Object.entries(input.queues)) {
      assertNonEmptyString(`queues[${JSON.stringify(queueName)}] (queue name)`, queueName);
      queues.set(queueName, resolveQueue(`queues[${JSON.stringify(queueName)}]`, queueOptions, defaults));
    }
  }

  const events = input.events ?? [];
  if (!Array.isArray(events)) throw new InvalidWorkerOptionsError('events', 'must be an array of event classes');
  events.forEach((eventClass, index) => {
    if (typeof eventClass !== 'function') {
      throw new InvalidWorkerOptionsError(`events[${index}]`, 'must be an event class (a BaseEvent subclass)');
    }
  });

  const autoStart = input.autoStart ?? true;
  assertBoolean('autoStart', autoStart);
  const leaseSeconds = input.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
  assertNumber('leaseSeconds', leaseSeconds, 1);
  const heartbeatSeconds = input.heartbeatSeconds ?? leaseSeconds / HEARTBEATS_PER_LEASE;
  assertHeartbeat(heartbeatSeconds, leaseSeconds);
  const shutdownGraceSeconds = input.shutdownGraceSeconds ?? DEFAULT_SHUTDOWN_GRACE_SECONDS;
  assertNumber('shutdownGraceSeconds', shutdownGraceSeconds, 0);
  if (input.logger !== undefined) {
    const logger = input.logger as unknown as Record<string, unknown>;
    for (const method of ['log', 'error', 'warn']) {
      if (typeof logger?.[method] !== 'function') throw new InvalidWorkerOptionsError('logger', `must have a ${method}() method`);
    }
  }

  return {
    database: resolveDatabase(input.database),
    queues,
    defaults,
    events: [...events],
    autoStart,
    leaseSeconds,
    heartbeatSeconds,
    shutdownGraceSeconds,
    logger: input.logger,
    queueOptions: (queueName) => queues.get(queueName) ?? defaults,
  };
}

/** Queues named in the config plus the queues of registered event classes: what the module polls. */
export function knownQueueNames(config: ResolvedWorkerConfig, events: { getRegisteredEvents(): { queueName?: string }[] }): string[] {
  const fromEvents = events.getRegisteredEvents().flatMap((event) => (event.queueName ? [event.queueName] : []));
  return [...new Set([...config.queues.keys(), ...fromEvents])];
}

function resolveQueue(field: string, value: unknown, fallback: ResolvedQueueOptions): ResolvedQueueOptions {
  assertPlainObject(field, value);
  assertKnownKeys(field, value, QUEUE_KEYS);
  const resolved = { ...fallback, ...stripUndefined(value) } as ResolvedQueueOptions;
  assertRetrySettings((setting) => `${field}.${setting}`, resolved, true);
  assertInteger(`${field}.pollIntervalMs`, resolved.pollIntervalMs, 10);
  assertInteger(`${field}.concurrency`, resolved.concurrency, 1);
  return resolved;
}

function resolveDatabase(value: unknown): ResolvedDatabaseOptions {
  const input = value ?? {};
  assertPlainObject('database', input);
  assertKnownKeys('database', input, DATABASE_KEYS);
  const resolved = {
    type: 'better-sqlite3' as const,
    database: DEFAULT_SQLITE_FILE,
    busyTimeoutMs: DEFAULT_BUSY_TIMEOUT_MS,
    synchronize: true,
    ...stripUndefined(input),
  };
  if (resolved.type !== 'better-sqlite3') {
    throw new InvalidWorkerOptionsError('database.type', `must be "better-sqlite3" (got ${JSON.stringify(resolved.type)})`);
  }
  assertNonEmptyString('database.database', resolved.database);
  assertInteger('database.busyTimeoutMs', resolved.busyTimeoutMs, 0);
  assertBoolean('database.synchronize', resolved.synchronize);
  return resolved as ResolvedDatabaseOptions;
}

function stripUndefined(value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(value).filter(([, entry]) => entry !== undefined));
}
