/**
 * Log and error texts of nestjs-workers that are not inside an error class, one section per area, as
 * small functions or constants. An error class keeps its own message.
 */

// ─── Storage: statements, dialects and the TypeORM repository (lib/storage) ────────────────────────────────

export const needsOpenTransaction = (): string =>
  'This needs the EntityManager of an open transaction (dataSource.transaction((manager) => …))';

export const notAnInteger = (what: string, value: string | number): string =>
  `Cannot write ${what} ${String(value)} into SQL: it is not an integer`;

export const notClaimedHere = (): string =>
  'TypeOrmWorkerRepository can only complete, retry or fail rows it claimed itself';

export const failedModelsOfCreator = (): string =>
  'TypeOrmWorkerRepository.failWorkers needs failed models made by TypeOrmWorkerCreator';

// ─── Processing: the worker service, its batch loop, attempts and outcome records ──────────────────────────

export const processingMessages = {
  notProvided: (method: string) => `The worker repository in use does not provide ${method}()`,
  leaseLessRepository: () =>
    'The worker repository given to setWorkerRepository() has only getWorkers(): it runs without leases ' +
    '(the larascript-events adapter), so run one worker process per queue',
  shutdownGraceEnded: (graceMs: number) =>
    `Shutdown grace period (${graceMs} ms) ended with events still running; ` +
    `their leases expire and another worker runs them again`,
  notGivenBack: (count: number, error: string) =>
    `Could not give back ${count} claimed events that never started; they run when their lease expires: ${error}`,
  queuedItems: (count: number, more = false) => `Queued items: ${count}${more ? '+' : ''}`,
  notCounted: (queueName: string, error: string) => `Could not count the due events of queue ${queueName}: ${error}`,
  unexpected: (queueName: string, error: string) =>
    `Unexpected error while processing a row of queue ${queueName}; it runs again when its lease expires: ${error}`,
  notRenewed: (queueName: string, error: string) =>
    `Could not renew the leases of running events in queue ${queueName}: ${error}`,
  processing: (eventName: string, id: string | undefined, attempt: number, of: number) =>
    `Processing ${eventName} (row ${id}, attempt ${attempt} of ${of})`,
  abortedLeaseLost: (lost: string, eventName: string) =>
    `${lost}; ${eventName} was aborted and the worker that holds it now decides its outcome`,
  failed: (eventName: string, id: string | undefined, attempt: number, of: number, error: string) =>
    `Event processing failed: ${eventName} (row ${id}, attempt ${attempt} of ${of}): ${error}`,
  invalidBackoff: (eventName: string, problem: string) =>
    `The backoff function of ${eventName} ${problem}; retrying after runAfterSeconds instead`,
  leaseLost: (lost: string, eventName: string) =>
    `${lost}; the worker that holds it now decides the outcome of ${eventName}`,
  completedLeaseLost: (lost: string) => `${lost}; the worker that holds it now decides the outcome of its event`,
  notRecorded: (eventName: string, id: string | undefined, error: string) =>
    `Could not record the outcome of ${eventName} (row ${id}); it runs again when its lease expires: ${error}`,
  noData: (queueName: string) =>
    `A claimed row of queue ${queueName} has no data; it stays leased until its lease expires`,
  unreadable: (queueName: string, error: string) =>
    `Could not read a claimed row of queue ${queueName}; it runs again when its lease expires: ${error}`,
  failuresNotRecorded: (count: number, queueName: string, error: string) =>
    `Could not record ${count} failed attempts of queue ${queueName}; they run again when their lease expires: ` +
    error,
  finishedNotRecorded: (count: number, queueName: string, error: string) =>
    `Could not record ${count} finished events of queue ${queueName}; they run again when their lease expires: ` +
    error,
  noOutcome: (eventName: string, id: string | undefined) =>
    `The worker repository reported no outcome for ${eventName} (row ${id}); it runs again when its lease expires`,
  cancelled: (eventName: string, id: string | undefined) =>
    `${eventName} (row ${id}) was cancelled; its row is removed and not retried`,
};

// ─── Module: WorkerModule and its core providers, the explorer, health and metrics ─────────────────────────

/** The explorer found an @OnWorkerEvent() method on a request-scoped provider. */
export const requestScopedHandlerSkipped = (label: string): string =>
  `@OnWorkerEvent() on ${label} is skipped: the provider is request-scoped, so there is no instance to call`;

/** The explorer subscribed an @OnWorkerEvent() method (debug level). */
export const handlerSubscribed = (names: readonly string[], label: string): string =>
  `@OnWorkerEvent(${names.join(', ')}) → ${label}`;

/** The health indicator could not read the queue statistics. */
export const statisticsUnavailable = (reason: string): string => `Queue statistics unavailable: ${reason}`;

/** A queue whose oldest due event has waited longer than the health threshold. */
export const oldestDueTooOld = (queueName: string, ageSeconds: number, maxSeconds: number): string =>
  `${queueName}: oldest due event waiting ${ageSeconds} s (max ${maxSeconds} s)`;

/** A queue with more failed events than the health threshold. */
export const tooManyFailed = (queueName: string, failed: number, maxFailed: number): string =>
  `${queueName}: ${failed} failed events (max ${maxFailed})`;

/** WorkerMetrics found one of its metric names already registered. */
export const metricAlreadyRegistered = (name: string): string =>
  `Metric ${name} is already registered on this registry: give each WorkerMetricsModule its own registry or prefix`;

/** WorkerMetrics could not refresh its depth gauges. */
export const depthGaugesUnreadable = (reason: string): string =>
  `Could not read queue statistics for the depth gauges (they keep their last values): ${reason}`;

/** drain() / drainAll() were given an application without WorkerModule. */
export const drainNeedsWorkerModule = (caller: string): string =>
  `${caller} needs an application (or testing module) that imports WorkerModule`;

// ─── Dispatch (EventService), the creator as row store, recurring slots, the failed store ──────────────────

/** A value that should have been a valid Date, as the error texts describe it. */
function describeDate(value: unknown): string {
  return value instanceof Date ? 'Invalid Date' : JSON.stringify(value);
}

export const dispatchMessages = {
  transactionOnSqlite:
    'dispatch(event, { manager }) needs PostgreSQL or MySQL/MariaDB: on SQLite all queries share one connection, ' +
    'so a transaction would absorb the writes of every worker and dispatch of the process',
  managerNeedsRowStore: (call: string): string =>
    `${call} needs the TypeORM worker creator: a replaced creator cannot join a transaction`,
  uniqueKeyNeedsRowStore:
    'dispatch(event, { uniqueKey }) needs the TypeORM worker creator: a replaced creator cannot enforce the key',
  delayAndRunAt: 'cannot be combined with runAt: give one of them',
  invalidDate: (value: unknown): string => `must be a valid Date (got ${describeDate(value)})`,
  notAnEventArray: 'must be an array of queued events',
  uniqueKeyInDispatchMany:
    'cannot be given to dispatchMany (one key cannot hold several events): dispatch keyed events one by one',
  unqueuedInDispatchMany: (index: number, what: string): string =>
    `dispatchMany() takes queued events only: events[${index}] (${what}) has no queue`,
} as const;

export const rowStoreMessages = {
  notATypeOrmModel: 'The TypeORM worker creator stores only the models it built (TypeOrmWorkerModel)',
  slotRowWithoutKey: "A recurring slot's row needs its slot's unique key",
  insertManyMixed: 'insertMany takes new pending rows of one DataSource',
  uniqueKeyKeptTaken: (queueName: string, uniqueKey: string | null): string =>
    `Could not queue ${queueName} event with unique key "${uniqueKey}": the key kept being released and taken`,
  noInsertedId: (table: string): string => `Insert into ${table} returned no id`,
  deleteUnsaved: 'Cannot delete a worker row that was never saved',
  rowGone: (id: string, table: string): string => `Worker row ${id} no longer exists in ${table}`,
  modelWithoutData: 'Worker model has no data: call createWorkerData() or updateWorkerData() first',
  managerOfAnotherDataSource: (managerType: string, tablesType: string): string =>
    `The EntityManager belongs to another DataSource (${managerType}) than the queue tables ` +
    `(${tablesType}): a transaction cannot span two databases`,
  listeningAgain: (channel: string, failures: number): string =>
    `Listening for new events again (PostgreSQL LISTEN ${channel}) after ${failures} failed attempts`,
  listenFailed: (reason: string, delayMs: number): string =>
    `The PostgreSQL LISTEN connection for wake-ups failed (${reason}); polling continues, ` +
    `reconnecting in ${delayMs} ms`,
} as const;

export const recurringMessages = {
  unknownSchedule: (name: string, known: string[]): string =>
    `No recurring event schedule named ${JSON.stringify(name)} (known: ${known.join(', ') || 'none'})`,
  invalidDate: dispatchMessages.invalidDate,
  notASlot: (slotAt: Date, name: string, cron: string): string =>
    `${slotAt.toISOString()} is not a slot of ${name} (${cron})`,
  beyondNextSlot: (slotAt: Date, name: string): string =>
    `${slotAt.toISOString()} is later than the next slot of ${name}`,
  needsRowStore:
    'Recurring events need the TypeORM worker creator: a replaced creator cannot join the slot transaction',
  notRegistered: (className: string): string =>
    `${className} is not a registered event: decorate it with @QueueEvent() or list it in events`,
  noQueue: (className: string): string => `${className} has no queue: only queued events can recur`,
  nameTooLong: (maxLength: number): string => `must be given: the event's name is longer than ${maxLength} characters`,
  nameTaken: (name: string): string =>
    `schedule name ${JSON.stringify(name)} is taken by another recurring event: ` +
    'give each schedule of one event its own name',
  started: (schedules: { name: string; cron: string }[]): string =>
    `Recurring events: ${schedules.map((schedule) => `${schedule.name} (${schedule.cron})`).join(', ')}`,
  dispatched: (name: string, slotAt: Date, id: string): string =>
    `Dispatched ${name} for ${slotAt.toISOString()} (row ${id})`,
  dispatchFailed: (name: string, slotAt: Date, reason: string): string =>
    `Could not dispatch recurring event ${name} for ${slotAt.toISOString()}: ${reason}`,
  stops: (name: string, slotAt: Date, reason: string): string =>
    `Recurring event ${name} stops: no slot follows ${slotAt.toISOString()}: ${reason}`,
} as const;

export const failedMessages = {
  pageSizeTooLarge: (max: number, pageSize: number): string => `must be at most ${max} (got ${pageSize})`,
  invalidOlderThan: (value: unknown): string =>
    `must be a valid Date (got ${value instanceof Date ? 'Invalid Date' : typeof value})`,
} as const;

export const schedulerMessages = {
  registeredEvents: (events: { name: string; queueName?: string }[]): string =>
    `Registered events: ${events.map((event) => `${event.name} (${event.queueName ?? 'sync'})`).join(', ') || 'none'}`,
  unresolvedDependency: (problem: string): string =>
    `${problem}; executions of this event fail until that provider can be resolved`,
  polling: (queueNames: string[]): string => `Polling queues: ${queueNames.join(', ')}`,
  pollingAgain: (queueName: string, failures: number): string =>
    `Queue ${queueName} is polling again after ${failures} failed polls`,
  pollFailed: (queueName: string, failures: number, pauseMs: number, reason: string): string =>
    `Polling queue ${queueName} failed (${failures} in a row); next try in ${pauseMs} ms: ${reason}`,
} as const;

export const progressMessages = {
  undefinedValue: (): string => 'is undefined (report a number or a small JSON value)',
  /** `path` is the serializer's, rooted at "payload": said of progress here. */
  problemAt: (path: string, problem: string): string =>
    path === 'payload' ? problem : `holds ${path.replace(/^payload/, 'progress')}, which ${problem}`,
  tooLarge: (bytes: number, max: number): string =>
    `is ${bytes} bytes of JSON, more than MAX_PROGRESS_BYTES (${max}); progress is a small status`,
} as const;

export const processRegistryMessages = {
  notSaved: (workerId: string, error: string): string =>
    `Could not save the row of worker process ${workerId} (the next heartbeat tries again): ${error}`,
  notRemoved: (workerId: string, error: string): string =>
    `Could not remove the row of worker process ${workerId} (the pruner drops it once its heartbeat is old): ${error}`,
} as const;

export const jobQueryMessages = {
  pageSizeOutOfRange: (max: number, pageSize: unknown): string =>
    `must be an integer between 1 and ${max} (got ${JSON.stringify(pageSize) ?? String(pageSize)})`,
  pageOutOfRange: (page: number, lastPage: number, total: number): string =>
    `is out of range: page ${page} is beyond the last page, ${lastPage} (${total} jobs match)`,
  unknownState: (state: unknown, known: readonly string[]): string =>
    `must be a job state or a list of them (${known.join(', ')}), got ${JSON.stringify(state) ?? String(state)}`,
  noStates: 'must name at least one state (leave it out for every state)',
  invalidDate: (value: unknown): string =>
    `must be a valid Date (got ${value instanceof Date ? 'Invalid Date' : value === null ? 'null' : typeof value})`,
  emptyRange: (from: Date, to: Date): string =>
    `must be later than from (${from.toISOString()}), got ${to.toISOString()}`,
  invalidPayloadKey: (key: string, maxLength: number): string =>
    'is not a payload field this filter can name: use letters, digits, _ and - ' +
    `(at most ${maxLength} characters), got ${JSON.stringify(key)}`,
  invalidPayloadValue: (value: unknown): string =>
    'must be a string, a finite number, a boolean or null: top-level fields are compared for equality ' +
    `(got ${Array.isArray(value) ? 'an array' : typeof value === 'number' ? String(value) : typeof value})`,
  malformedPayloadString: 'must be well-formed Unicode (it has a lone surrogate)',
  tooManyPayloadFields: (count: number, max: number): string =>
    `must name at most ${max} fields (got ${count}): narrow the listing with the other filters`,
} as const;

export const outcomeMessages = {
  historyNeedsBuiltInRepository:
    'keepCompleted is set, but the worker repository in use has no completeWorkersToHistory(): completed ' +
    'events are deleted, not kept (the history needs the built-in TypeORM repository)',
  throughputNotRecorded: (queueName: string, reason: string): string =>
    `The throughput of a batch of queue ${queueName} was not recorded (its outcomes were): ${reason}`,
} as const;

export const retentionMessages = {
  failed: (reason: string): string => `Pruning failed (the next turn tries again): ${reason}`,
  turn: (
    name: string,
    slotAt: number,
    report: {
      history: number;
      failed: number;
      throughput: number;
      processes: number;
      throttles: number;
      statements: number;
    },
  ): string =>
    `Prune turn ${name}@${slotAt}: deleted ${report.history} history, ${report.failed} failed, ` +
    `${report.throughput} throughput, ${report.processes} process and ${report.throttles} throttle rows ` +
    `in ${report.statements} statements`,
} as const;

/*
 * Flow control (issue 17). One section per part: the limited claim (storage), the limits' options and
 * the run loop, pause/resume and the rate limiter services, and dispatch's flow options.
 */

/** The limited claim and the rate limiters' storage. */
export const flowClaimMessages = {
  /** A lock row (a queue's, a rate limiter's) missing right after its insert: the table is not as migrated. */
  lockRowMissing: (table: string, name: string): string =>
    `Flow control could not lock the row "${name}" of ${table}: it is missing right after its insert ` +
    '(is the table the one the migrations created?)',
} as const;

// ---------------------------------------------------------------------------------------------------

/** The flow-control options (validated at startup) and the run loop under limits. */
export const flowOptionsMessages = {
  notPositiveInteger: (value: string) => `must be a positive integer (got ${value})`,
  notRateLimit: (value: string) =>
    `must be { limit, intervalSeconds } or the name of a rateLimits entry (got ${value})`,
  intervalTooShort: (value: string) => `must be a number of seconds ≥ 0.001 (got ${value})`,
  intervalTooLong: (max: number, value: string) => `must be at most ${max} seconds (got ${value})`,
  unknownRateLimit: (name: string, known: readonly string[]) =>
    `names no entry of rateLimits (${JSON.stringify(name)}; ` +
    `${known.length === 0 ? 'rateLimits is empty' : `known: ${known.map((k) => JSON.stringify(k)).join(', ')}`})`,
  rateLimitNameColon: (name: string) =>
    `must not contain ':' (got ${JSON.stringify(name)}): take('name:key') uses it to name a key's budget`,
  notStartedInGrace: (queueName: string, count: number, lateMs: number, graceMs: number) =>
    `Queue ${queueName}: ${count} rate-limited event(s) given back unstarted, their start came ` +
    `${Math.round(lateMs)} ms after the claim was sent (start grace ${graceMs} ms)`,
} as const;

// ---------------------------------------------------------------------------------------------------

/** pauseQueue / resumeQueue and WorkerRateLimiter. */
export const flowControlMessages = {
  paused: (queueName: string) =>
    `Queue ${queueName} paused for every process on the database: no new claim takes its events (running ones finish)`,
  resumed: (queueName: string, woken: boolean) =>
    `Queue ${queueName} resumed: ${woken ? 'idle workers were woken' : 'workers claim its events at their next poll'}`,
  bucketNotString: () => 'must be a string: "name" or "name:key"',
  bucketNameEmpty: () => 'the limiter name (before the first ":") is empty',
  bucketKeyEmpty: () => 'the key (after the first ":") is empty; give "name" for the whole budget',
  bucketKeyTooLong: (max: number, length: number) => `the key must be at most ${max} characters (got ${length})`,
  bucketKeyMalformed: (problem: string) => `the key ${problem}`,
  timeoutNotPositive: (value: string) => `must be a finite number of milliseconds ≥ 0 (got ${value})`,
  signalNotAbortSignal: () => 'must be an AbortSignal',
} as const;

// ---------------------------------------------------------------------------------------------------

/** Dispatch's flow options: concurrencyKey, throttleSeconds, debounceSeconds. */
export const dispatchFlowMessages = {
  /** Field of a concurrency key computed by `@QueueEvent({ concurrencyKey })` or the event's method. */
  computedKeyField: (eventName: string, source: 'decorator' | 'event'): string =>
    source === 'decorator'
      ? `concurrencyKey of ${eventName} (@QueueEvent({ concurrencyKey }))`
      : `concurrencyKey of ${eventName} (getConcurrencyKey())`,
  keyThrew: (reason: string): string => `could not be computed: it threw ${reason}`,
  notAFunction: (got: string): string => `must be a function of the payload returning the key (got ${got})`,
  notAPositiveInteger: (got: string): string => `must be a positive integer (got ${got})`,
  needsUniqueKey: (option: string): string =>
    `needs uniqueKey: the key is what ${option === 'throttleSeconds' ? 'is throttled' : 'is debounced'}`,
  throttleAndDebounce: 'cannot be combined with debounceSeconds: give one of them',
  debounceAndDueTime: (option: string): string =>
    `cannot be combined with ${option}: debounce makes the event due debounceSeconds after the last dispatch`,
  throttleNotPositive: (got: string): string => `must be a finite number > 0 (got ${got})`,
  inDispatchMany: (option: string): string =>
    `cannot be given to dispatchMany (${option} works on one key): dispatch keyed events one by one`,
  needsRowStore: (option: string): string =>
    `dispatch(event, { ${option} }) needs the TypeORM worker creator: a replaced creator cannot keep the key's window`,
  notAKeyedPendingRow: 'A throttled or debounced insert takes a new pending row with a unique key',
  keyKeptTaken: (queueName: string, uniqueKey: string): string =>
    `Could not dispatch ${queueName} event with unique key "${uniqueKey}": the key kept being released and taken`,
} as const;

// ---------------------------------------------------------------------------------------------------

/** The start grace of rate-limited queues: claims given back because their events started too late. */
export const flowGraceMessages = {
  givenBackInRow: (queueName: string, count: number, lateMs: number, graceMs: number) =>
    `Queue ${queueName}: ${count} claims in a row were given back unstarted, their events could not start ` +
    `within the start grace (last: ${Math.round(lateMs)} ms after the grant, grace ${graceMs} ms); each spends ` +
    'rate budget and the queue makes no progress while this lasts. Something holds this process past the ' +
    'grace at every claim (a blocked event loop, a slow host): fix that, or configure a larger startGraceMs',
} as const;
