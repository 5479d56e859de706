import {
  AttemptsExhaustedError,
  CorruptPayloadError,
  EventCancelledError,
  LeaseLostError,
  NonErrorThrownError,
  UnknownEventError,
  UnrecoverableError,
  UnserializablePayloadError,
  UnserializableResultError,
} from '../errors/worker.error.js';
import { keepsCompleted } from '../common/worker-options.validation.js';
import { EventSnooze, snoozeSecondsOf } from '../events/event-snooze.js';
import { serializePayload } from '../events/payload-serializer.js';
import { describeError } from '../errors/describe-error.js';
import type { IBaseEvent } from '../interfaces/base-event.interface.js';
import type { IEventService } from '../interfaces/event-service.interface.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';
import type { IWorkerCreator } from '../interfaces/worker-creator.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type { TEventWorkerOptions } from '../interfaces/worker-options.interface.js';
import type { RetryRequest } from '../interfaces/worker-repository.interface.js';
import { processingMessages as messages } from '../worker.messages.js';
import type { BatchQueueRepository } from './batch-repository.adapter.js';
import { ClaimedRun } from './claimed-run.js';
import { retryDelaySeconds } from './retry-policy.js';

/** What the lifecycle announces of a job: 'completed', 'retrying', 'failed', 'cancelled'. */
export interface AnnouncedJob {
  queueName: string;
  eventName: string;
  attributes: IWorkerAttributes;
  event?: IBaseEvent;
}

interface Attempted {
  job: IWorkerModel;
  announced: AnnouncedJob;
  durationMs: number;
  /** Whether the row is kept in the history when it completes or is cancelled (keepCompleted). */
  keep: boolean;
  /** The last progress execute() reported (JSON text), for the history row or the failed copy. */
  progress?: string;
}

/** What a kept completion stores: the result as JSON text, or null and why it was not kept. */
export interface StoredResult {
  result: string | null;
  error: string | null;
}

/**
 * What became of one attempt, for the outcome recorder to write. 'lease-lost', 'unreadable' and
 * 'undecided' (its outcome could not be worked out) are logged already and leave the row leased: it
 * runs again when its lease expires, or the worker that holds it now decides.
 */
export type JobOutcome =
  | ({ kind: 'succeeded'; stored: StoredResult } & Attempted)
  | ({ kind: 'retry'; error: Error; retry: RetryRequest } & Attempted)
  | ({ kind: 'snoozed'; retry: RetryRequest } & Attempted)
  | ({ kind: 'failed'; error: Error; failed: IWorkerModel; permanent: boolean } & Attempted)
  | ({ kind: 'cancelled'; reason: string } & Attempted)
  | { kind: 'lease-lost' }
  | { kind: 'unreadable' }
  | { kind: 'undecided' };

const LEASE_LOST: JobOutcome = { kind: 'lease-lost' };
const UNREADABLE: JobOutcome = { kind: 'unreadable' };
const UNDECIDED: JobOutcome = { kind: 'undecided' };
const NOTHING_STORED: StoredResult = { result: null, error: null };

/** What the attempts of one runWorker() call share; none of it changes during the run. */
export interface AttemptSettings {
  options: TEventWorkerOptions;
  eventService: IEventService;
  creator: IWorkerCreator;
  repository: BatchQueueRepository;
  logger: ILoggerService;
  /** The claimed jobs' runs by row id, through which cancel() and the heartbeat abort them. */
  runs: ReadonlyMap<string, ClaimedRun>;
  /** Largest result JSON kept in the history, in UTF-8 bytes (the module's maxPayloadBytes). */
  maxResultBytes?: number;
}

/**
 * Runs one claimed job and says what became of it, without writing to the database. Whatever goes
 * wrong before the outcome is known counts as a failed attempt of that job; a job that cannot even be
 * read stays leased and runs again when its lease expires, so no row is lost and none blocks the pass.
 */
export async function attemptJob(job: IWorkerModel, dueBy: Date, settings: AttemptSettings): Promise<JobOutcome> {
  const { options, eventService, repository, logger } = settings;
  const claimed = readJob(job, options.queueName, logger);
  if (!claimed) return UNREADABLE;
  const { data } = claimed;
  const run = (data.id !== undefined ? settings.runs.get(data.id) : undefined) ?? new ClaimedRun();
  let failure = claimed.failure;
  let permanent = failure !== undefined;
  let maxAttempts = options.retries;
  let policy: Pick<TEventWorkerOptions, 'runAfterSeconds' | 'backoff' | 'timeoutSeconds'> = options;
  let event: IBaseEvent | undefined;
  let returned: unknown;
  let snoozeSeconds: number | undefined;
  let keep = keepsCompleted(options.keepCompleted, undefined);
  const startedAt = performance.now();
  try {
    const eventOptions = eventService.getEventOptions(data.eventName);
    keep = keepsCompleted(options.keepCompleted, eventOptions?.keepCompleted);
    maxAttempts = eventOptions?.retries ?? maxAttempts;
    // @QueueEvent() options win over the run's (queue's) options, setting by setting.
    policy = {
      runAfterSeconds: eventOptions?.runAfterSeconds ?? options.runAfterSeconds,
      backoff: eventOptions?.backoff ?? options.backoff,
      timeoutSeconds: eventOptions?.timeoutSeconds ?? options.timeoutSeconds,
    };
    if (!failure && data.attempts > maxAttempts) {
      failure = new AttemptsExhaustedError(data.id, data.eventName, maxAttempts);
      permanent = true;
    }
    if (!failure) {
      event = eventService.createEvent(data.eventName, data.payload);
      logger.debug?.(messages.processing(data.eventName, data.id, data.attempts, maxAttempts));
      returned = await run.execute(event, data.eventName, policy.timeoutSeconds);
      // An invalid snooze throws here: a failed attempt with that error.
      if (returned instanceof EventSnooze) snoozeSeconds = snoozeSecondsOf(data.eventName, returned);
    }
  } catch (thrown) {
    failure ??= thrown instanceof Error ? thrown : new NonErrorThrownError(thrown);
    permanent ||= failure instanceof UnknownEventError || failure instanceof UnrecoverableError;
  }
  const durationMs = performance.now() - startedAt;
  const announced = { queueName: data.queueName, eventName: data.eventName, attributes: data, event };
  const attempted = { job, announced, durationMs, keep, progress: run.latestProgress };
  if (!failure && snoozeSeconds === undefined) {
    // Serialized only when kept: a queue without history pays nothing for results.
    const stored = keep ? storedResult(data.eventName, returned, settings.maxResultBytes, logger) : NOTHING_STORED;
    return { kind: 'succeeded', ...attempted, stored };
  }
  if (!failure) {
    try {
      // Like a retry: on the database's clock, and strictly after the pass start.
      const dueAt = (await repository.currentTime()) + snoozeSeconds! * 1000;
      const availableAt = new Date(Math.max(dueAt, dueBy.getTime() + 1));
      // The row's own error: a repository that writes it anyway (one without snoozes) keeps it so.
      const retry = { error: data.error ?? '', retries: maxAttempts, availableAt, snoozed: true };
      return { kind: 'snoozed', ...attempted, retry };
    } catch (storageError) {
      logger.error(messages.notRecorded(data.eventName, data.id, describeError(storageError)));
      return UNDECIDED;
    }
  }
  if (run.abortReason instanceof LeaseLostError) {
    // The heartbeat found the row held by another worker (or gone): its writes would be fenced out anyway.
    logger.warn(messages.abortedLeaseLost(run.abortReason.message, data.eventName));
    return LEASE_LOST;
  }
  if (run.abortReason instanceof EventCancelledError) {
    // Cancelled before or while it ran: removed, whatever the attempt did after the abort.
    return { kind: 'cancelled', ...attempted, reason: run.abortReason.message };
  }
  try {
    logger.error(messages.failed(data.eventName, data.id, data.attempts, maxAttempts, failure.message), failure.stack);
    const error = failure.stack ?? `${failure.name}: ${failure.message}`;
    if (permanent || data.attempts >= maxAttempts) {
      const now = new Date(await repository.currentTime());
      const failed = settings.creator.createFailedWorkerModel({
        ...data,
        error,
        retries: maxAttempts,
        failedAt: now,
        updatedAt: now,
      });
      const unrecoverable = failure instanceof UnrecoverableError;
      return { kind: 'failed', ...attempted, error: failure, failed, permanent: unrecoverable };
    }
    const delaySeconds = retryDelaySeconds(policy.backoff, policy.runAfterSeconds, data.attempts, failure, (problem) =>
      logger.error(messages.invalidBackoff(data.eventName, problem)),
    );
    // Strictly after the pass start, so a runOnce pass never picks its own retries up again.
    const dueAt = (await repository.currentTime()) + delaySeconds * 1000;
    const availableAt = new Date(Math.max(dueAt, dueBy.getTime() + 1));
    const retry = { error, retries: maxAttempts, availableAt };
    return { kind: 'retry', ...attempted, error: failure, retry };
  } catch (storageError) {
    // The database clock or the failed copy could not be had: the row stays leased, nothing is recorded.
    if (storageError instanceof LeaseLostError) logger.warn(messages.leaseLost(storageError.message, data.eventName));
    else logger.error(messages.notRecorded(data.eventName, data.id, describeError(storageError)));
    return UNDECIDED;
  }
}

/**
 * The claimed job's attributes. A payload that no longer parses becomes a permanent failure whose
 * failed copy keeps the raw text (as a JSON string); a row that cannot be read at all is left leased.
 */
function readJob(
  job: IWorkerModel,
  queueName: string,
  logger: ILoggerService,
): { data: IWorkerAttributes; failure?: Error } | undefined {
  try {
    const data = job.getWorkerData();
    if (data) return { data };
    logger.error(messages.noData(queueName));
  } catch (error) {
    if (error instanceof CorruptPayloadError)
      return { data: { ...error.attributes, payload: error.rawPayload }, failure: error };
    logger.error(messages.unreadable(queueName, describeError(error)));
  }
  return undefined;
}

/**
 * What execute() returned, as the history keeps it: JSON text by the payload serializer's rules
 * (undefined is null), within `maxBytes`. A value that does not serialize is logged and kept as null,
 * with the reason (UnserializableResultError's message) as the row's error; the event still completed.
 */
function storedResult(
  eventName: string,
  value: unknown,
  maxBytes: number | undefined,
  logger: ILoggerService,
): StoredResult {
  try {
    return { result: serializePayload(eventName, value, { maxBytes }), error: null };
  } catch (error) {
    // Whatever reading the value threw (a getter, a revoked Proxy, a string too long to join): the
    // event did complete, so its completion must still be recorded.
    const refused =
      error instanceof UnserializablePayloadError
        ? // The serializer names paths from "payload": a result's are named from "result".
          new UnserializableResultError(
            eventName,
            `${error.problem}${error.path === 'payload' ? '' : ` (at result${error.path.slice('payload'.length)})`}`,
          )
        : new UnserializableResultError(eventName, `could not be read: ${describeError(error)}`);
    logger.error(refused.message);
    return { result: null, error: refused.message };
  }
}
