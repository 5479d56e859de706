import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';

/** Base class of every error this package throws, so callers can catch them as one family. */
export class WorkerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Module or `runWorker` options that cannot work; `field` is the path of the offending option. */
export class InvalidWorkerOptionsError extends WorkerError {
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`Invalid nestjs-workers option "${field}": ${problem}`);
  }
}

/** A payload that would not survive a JSON round trip; `path` points at the bad value. */
export class UnserializablePayloadError extends WorkerError {
  constructor(
    readonly eventName: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(`Cannot dispatch ${eventName}: ${path} ${problem}; payloads must survive a JSON round trip`);
  }
}

/**
 * A stored payload that no longer parses as JSON. `attributes` holds the row's other fields (payload
 * null), so the row can still be recorded as failed; the raw text is kept in the message.
 */
export class CorruptPayloadError extends WorkerError {
  constructor(
    readonly attributes: IWorkerAttributes,
    readonly rawPayload: string,
    cause: unknown,
  ) {
    super(
      `Stored payload of worker row ${attributes.id ?? '(unsaved)'} (${attributes.eventName}) is not valid JSON: ` +
        truncate(rawPayload, 2000),
      { cause },
    );
  }
}

/** An event name with no registered event class. */
export class UnknownEventError extends WorkerError {
  constructor(readonly eventName: string) {
    super(
      `Unknown event "${eventName}": no event class with that name is registered ` +
        `(decorate it with @QueueEvent() or list it in WorkerModule's "events" option)`,
    );
  }
}

/** Two different event classes registered under one name. */
export class DuplicateEventNameError extends WorkerError {
  constructor(
    readonly eventName: string,
    firstClass: string,
    secondClass: string,
  ) {
    super(
      `Two event classes are registered as "${eventName}" (${firstClass} and ${secondClass}); ` +
        `give one of them another name with @QueueEvent(queue, { name })`,
    );
  }
}

/** A worker tried to change a row whose lease it no longer holds; the other holder's work stands. */
export class LeaseLostError extends WorkerError {
  constructor(readonly workerId: string) {
    super(
      `Lease on worker row ${workerId} was lost (it expired and another worker may hold it); ` +
        'the change was not applied',
    );
  }
}

/** A WorkerService or EventService used before the dependency it needs was set. */
export class WorkerNotConfiguredError extends WorkerError {
  constructor(what: string, setter: string) {
    super(`${what} is not set: call ${setter}() first or use WorkerModule`);
  }
}

/** An event dependency (an @Inject() property of an event class) that cannot be resolved. */
export class EventDependencyError extends WorkerError {
  constructor(eventName: string, property: string, token: string, cause?: unknown) {
    const reason = cause instanceof Error ? `: ${cause.message}` : '';
    super(`Cannot inject ${eventName}.${property} (${token})${reason}`, { cause });
  }
}

/** The error recorded when a thrown value is not an Error instance. */
export class NonErrorThrownError extends WorkerError {
  constructor(readonly thrown: unknown) {
    super(`Event threw a non-Error value: ${describeThrown(thrown)}`);
  }
}

function describeThrown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    const json = JSON.stringify(value);
    if (json !== undefined) return truncate(json, 1000);
  } catch {
    // fall through to String(): cycles, BigInt
  }
  return String(value);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A row claimed again after its final attempt never finished (the worker died or lost its lease). */
export class AttemptsExhaustedError extends WorkerError {
  constructor(workerId: string | undefined, eventName: string, retries: number) {
    super(
      `Worker row ${workerId ?? '(unsaved)'} (${eventName}) used all ${retries} attempts: ` +
        `its last attempt never finished (the worker stopped or lost its lease)`,
    );
  }
}

/** A failed-store row that does not exist (or was already retried or deleted). */
export class FailedWorkerNotFoundError extends WorkerError {
  constructor(readonly id: string) {
    super(`No failed event with id ${JSON.stringify(id)} in the failed store`);
  }
}

/**
 * The reason a cancelled event's AbortSignal carries, and what the repository reports when it finds
 * a finished attempt's row cancelled: the row is removed, never retried.
 */
export class EventCancelledError extends WorkerError {
  constructor(
    readonly id: string,
    readonly eventName?: string,
  ) {
    super(`${eventName ?? 'Event'} (row ${id}) was cancelled`);
  }
}

/** An attempt that ran longer than its timeoutSeconds; it follows the retry path like any failure. */
export class EventTimeoutError extends WorkerError {
  constructor(
    readonly eventName: string,
    readonly timeoutSeconds: number,
  ) {
    super(`${eventName} did not finish within its timeout of ${timeoutSeconds} s`);
  }
}

/**
 * Thrown from execute() when retrying cannot help (bad input, a resource gone): the event moves to
 * the failed store at once, whatever attempts it has left. BullMQ users know it under this name.
 */
export class UnrecoverableError extends WorkerError {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
  }
}

/**
 * What execute() returned cannot be kept as its result: it does not survive a JSON round trip, or its
 * JSON is larger than maxPayloadBytes. The event still counts as completed; its history row keeps
 * this message instead of the result.
 */
export class UnserializableResultError extends WorkerError {
  constructor(
    readonly eventName: string,
    readonly problem: string,
  ) {
    super(`The result of ${eventName} was not stored: it ${problem}`);
  }
}

/** A reportProgress() value that is not small JSON; nothing is recorded. */
export class UnserializableProgressError extends WorkerError {
  constructor(
    readonly eventName: string,
    readonly problem: string,
  ) {
    super(`Progress of ${eventName} was not recorded: it ${problem}`);
  }
}

/**
 * execute() returned a snooze that cannot be kept: its seconds are not a number from 0 to
 * MAX_DELAY_SECONDS. The attempt fails with this error (and follows the retry path).
 */
export class InvalidSnoozeError extends WorkerError {
  constructor(
    readonly eventName: string,
    readonly problem: string,
  ) {
    super(`${eventName} cannot snooze: seconds ${problem}`);
  }
}
