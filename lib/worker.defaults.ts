/** Default values of the options, and the limits the options and inputs are checked against. */

export const DEFAULT_SQLITE_FILE = 'nestjs-workers.sqlite';
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;
export const DEFAULT_RETRIES = 3;
/** The name columns (queue_name, event_name, unique_key, schedule name) are varchar(255). */
export const MAX_NAME_LENGTH = 255;
/**
 * Default of the maxPayloadBytes option: 1 MiB of JSON, as common queues default to (SQS 1 MiB,
 * Cloud Tasks 1 MB).
 */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Largest maxPayloadBytes accepted: PostgreSQL's text holds at most 1 GB. */
export const MAX_PAYLOAD_BYTES_LIMIT = 1024 * 1024 * 1024;
/**
 * Longest delay accepted (delaySeconds, runAfterSeconds, backoff): about 317 years, so every due time
 * stays a valid Date and an exact bigint (1e300 would make it Infinity: a row that can be neither
 * stored nor retried).
 */
export const MAX_DELAY_SECONDS = 1e10;
/**
 * Deepest nesting of arrays and objects a payload may have (deeper JSON overflows the stack of
 * whoever reads it).
 */
export const MAX_PAYLOAD_DEPTH = 100;
export const DEFAULT_RUN_AFTER_SECONDS = 0;
/** Per-minute outcome counts are kept a week, as pg-boss keeps completed jobs. */
export const DEFAULT_THROUGHPUT_RETENTION_SECONDS = 7 * 24 * 3600;
export const DEFAULT_PRUNE_INTERVAL_SECONDS = 60;
/** Rows one pruning statement deletes at most, so pruning never holds locks a claim waits for long. */
export const PRUNE_BATCH_SIZE = 1000;
/** Largest progress value (bytes of its JSON text): progress is a small status, written with each heartbeat. */
export const MAX_PROGRESS_BYTES = 64 * 1024;
/** findJobs() pages hold at most this many jobs. */
export const MAX_JOB_PAGE_SIZE = 500;
export const DEFAULT_JOB_PAGE_SIZE = 20;
export const DEFAULT_POLL_INTERVAL_MS = 1000;
export const DEFAULT_CONCURRENCY = 1;
export const DEFAULT_LEASE_SECONDS = 30;
export const DEFAULT_SHUTDOWN_GRACE_SECONDS = 10;
/** By default a lease is renewed three times over its length, so two missed beats still keep it. */
export const HEARTBEATS_PER_LEASE = 3;
/** Longest pause between polls after repeated errors (database down). */
export const MAX_POLL_BACKOFF_MS = 30_000;
/** Node's setTimeout holds at most 2^31 - 1 ms (24.8 days); longer waits are taken in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Largest batchSize: one claim's rows and one completion statement's id list. */
export const MAX_BATCH_SIZE = 10_000;

/** "Queued items: N" counts the rows still due beyond the first batch up to this many (then "N+"). */
export const QUEUED_ITEMS_COUNT_LIMIT = 10_000;

/**
 * How long after its start was stamped the worker may still start a rate-limited event: a granted
 * start counts in its limiter's window for interval + this grace, so the execute() starts in any
 * window stay within the limit even when the claim's answer takes a while; an event not started by
 * then is given back unstarted. The stamp is the claim's last reading before its INSERT and commit, and
 * the claim's wait in the database does not count, so what the grace covers is the commit and the way
 * back: 25 ms costs 2.4 % of a 1 s rate (4 worker processes on this 2-core machine: 0–6 of 300 events
 * given back on PostgreSQL and MariaDB, none on SQLite).
 */
export const DEFAULT_START_GRACE_MS = 25;
/** Shortest rate-limit window: the database counts starts in whole milliseconds. */
export const MIN_RATE_INTERVAL_SECONDS = 0.001;
/** A rateLimits name is the limiter's row (varchar(255)); inline limits are named `queue:<queue name>`. */
export const MAX_RATE_LIMIT_NAME_LENGTH = 200;
