import {
  AttemptsExhaustedError,
  CorruptPayloadError,
  EventCancelledError,
  LeaseLostError,
  NonErrorThrownError,
  UnknownEventError,
} from '../errors/worker.error.js';
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
}

/**
 * What became of one attempt, for the outcome recorder to write. 'lease-lost', 'unreadable' and
 * 'undecided' (its outcome could not be worked out) are logged already and leave the row leased: it
 * runs again when its lease expires, or the worker that holds it now decides.
 */
export type JobOutcome =
  | ({ kind: 'succeeded' } & Attempted)
  | ({ kind: 'retry'; error: Error; retry: RetryRequest } & Attempted)
  | ({ kind: 'failed'; error: Error; failed: IWorkerModel } & Attempted)
  | ({ kind: 'cancelled' } & Attempted)
  | { kind: 'lease-lost' }
  | { kind: 'unreadable' }
  | { kind: 'undecided' };

const LEASE_LOST: JobOutcome = { kind: 'lease-lost' };
const UNREADABLE: JobOutcome = { kind: 'unreadable' };
const UNDECIDED: JobOutcome = { kind: 'undecided' };

/** What the attempts of one runWorker() call share; none of it changes during the run. */
export interface AttemptSettings {
  options: TEventWorkerOptions;
  eventService: IEventService;
  creator: IWorkerCreator;
  repository: BatchQueueRepository;
  logger: ILoggerService;
  /** The claimed jobs' runs by row id, through which cancel() and the heartbeat abort them. */
  runs: ReadonlyMap<string, ClaimedRun>;
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
  const startedAt = performance.now();
  try {
    const eventOptions = eventService.getEventOptions(data.eventName);
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
      await run.execute(event, data.eventName, policy.timeoutSeconds);
    }
  } catch (thrown) {
    failure ??= thrown instanceof Error ? thrown : new NonErrorThrownError(thrown);
    permanent ||= failure instanceof UnknownEventError;
  }
  const durationMs = performance.now() - startedAt;
  const announced = { queueName: data.queueName, eventName: data.eventName, attributes: data, event };
  if (!failure) return { kind: 'succeeded', job, announced, durationMs };
  if (run.abortReason instanceof LeaseLostError) {
    // The heartbeat found the row held by another worker (or gone): its writes would be fenced out anyway.
    logger.warn(messages.abortedLeaseLost(run.abortReason.message, data.eventName));
    return LEASE_LOST;
  }
  if (run.abortReason instanceof EventCancelledError) {
    // Cancelled before or while it ran: removed, whatever the attempt did after the abort.
    return { kind: 'cancelled', job, announced, durationMs };
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
      return { kind: 'failed', job, announced, durationMs, error: failure, failed };
    }
    const delaySeconds = retryDelaySeconds(policy.backoff, policy.runAfterSeconds, data.attempts, failure, (problem) =>
      logger.error(messages.invalidBackoff(data.eventName, problem)),
    );
    // Strictly after the pass start, so a runOnce pass never picks its own retries up again.
    const dueAt = (await repository.currentTime()) + delaySeconds * 1000;
    const availableAt = new Date(Math.max(dueAt, dueBy.getTime() + 1));
    const retry = { error, retries: maxAttempts, availableAt };
    return { kind: 'retry', job, announced, durationMs, error: failure, retry };
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
