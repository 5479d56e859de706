/**
 * The log and error texts of the package that are not written inside an error class, one section
 * per area. Texts only: nothing here imports anything of the package.
 */

// ── Dispatch (EventService), the creator as row store, recurring slots, the failed store ──

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
  invalidDate: (value: unknown): string => `must be a valid Date (got ${describeDate(value)})`,
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
