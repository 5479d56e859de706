import { createHash } from 'node:crypto';
import { rateIntervalMs } from '../common/rate-interval.js';
import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import type { CancelTarget } from '../interfaces/cancel.interface.js';
import type { IEventService } from '../interfaces/event-service.interface.js';
import type {
  ClaimFlowLimits,
  ClaimRateLimit,
  RateLimitOptions,
  RateLimitReference,
} from '../interfaces/flow-control.interface.js';
import type { WorkerQueueOptions } from '../interfaces/worker-module-options.interface.js';
import type { TEventWorkerOptions } from '../interfaces/worker-options.interface.js';
import {
  assertBatchSize,
  assertInteger,
  assertKnownKeys,
  assertPlainObject,
  assertPositiveInteger,
  assertRetrySettings,
  assertStoredName,
  keepCompletedOf,
  rowIdOf,
} from '../common/worker-options.validation.js';
import { MAX_NAME_LENGTH } from '../worker.defaults.js';

/** Every key of TEventWorkerOptions: a misspelt option (queueNme) is refused, not ignored. */
const RUN_WORKER_KEYS = [
  'queueName',
  'retries',
  'runAfterSeconds',
  'runOnce',
  'workerCreator',
  'concurrency',
  'batchSize',
  'backoff',
  'timeoutSeconds',
  'keepCompleted',
] as const satisfies readonly (keyof TEventWorkerOptions)[];

export function validateRunWorkerOptions(options: TEventWorkerOptions): void {
  assertPlainObject('runWorker options', options);
  assertKnownKeys('', options, RUN_WORKER_KEYS);
  assertStoredName('queueName', options.queueName);
  assertRetrySettings((setting) => setting, options, true);
  if (options.concurrency !== undefined) assertInteger('concurrency', options.concurrency, 1);
  if (options.batchSize !== undefined) assertBatchSize('batchSize', options.batchSize);
  keepCompletedOf('keepCompleted', options.keepCompleted);
}

/** Queue names asked about (getHealth, getQueueStatistics), each checked as a stored name. */
export function checkedQueueNames(queueNames: unknown): string[] {
  if (!Array.isArray(queueNames)) throw new InvalidWorkerOptionsError('queueNames', 'must be an array of queue names');
  queueNames.forEach((queueName: unknown, index) => assertStoredName(`queueNames[${index}]`, queueName));
  return queueNames as string[];
}

/** The repository's form of a cancel target, checked (a row id, or a queue and a unique key). */
export function cancelRequestOf(target: CancelTarget): { id: string } | { queueName: string; uniqueKey: string } {
  if (typeof target === 'string' || typeof target === 'number') return { id: rowIdOf(target, 'an event id') };
  assertPlainObject('cancel target', target);
  assertKnownKeys('', target, ['queueName', 'uniqueKey']);
  assertStoredName('queueName', target.queueName);
  assertStoredName('uniqueKey', target.uniqueKey);
  return { queueName: target.queueName, uniqueKey: target.uniqueKey };
}

/** A queue's flow-control options as configured, and the module's named rate limiters they may name. */
export interface QueueFlowSettings {
  limits: Pick<WorkerQueueOptions, 'globalConcurrency' | 'keyConcurrency' | 'rateLimit' | 'keyRateLimit'>;
  rateLimits: ReadonlyMap<string, RateLimitOptions>;
}

/** An event service that can list its events (EventService): where @QueueEvent({ keyConcurrency }) is found. */
interface ListingEventService extends IEventService {
  getRegisteredEvents(): { name: string; queueName?: string }[];
}

/**
 * What the claims of a run of `queueName` must respect, or undefined when the queue has no limit at
 * all: its claims then take the plain path, which pays nothing for flow control. The limits are the
 * queue's options (validated at startup), the named or inline rate limits made into the limiters the
 * claim locks, and the keyConcurrency of each event class of the queue that sets its own.
 */
export function claimFlowLimits(
  queueName: string,
  settings: QueueFlowSettings | undefined,
  eventService: IEventService,
  startGraceMs: number,
): ClaimFlowLimits | undefined {
  const { globalConcurrency, keyConcurrency, rateLimit, keyRateLimit } = settings?.limits ?? {};
  const keyConcurrencyByEvent = eventKeyConcurrency(queueName, eventService);
  if (
    globalConcurrency === undefined &&
    keyConcurrency === undefined &&
    rateLimit === undefined &&
    keyRateLimit === undefined &&
    keyConcurrencyByEvent === undefined
  ) {
    return undefined;
  }
  const rateLimits = settings?.rateLimits ?? new Map<string, RateLimitOptions>();
  const flow: ClaimFlowLimits = { startGraceMs };
  if (globalConcurrency !== undefined) flow.globalConcurrency = globalConcurrency;
  if (keyConcurrency !== undefined) flow.keyConcurrency = keyConcurrency;
  if (keyConcurrencyByEvent !== undefined) flow.keyConcurrencyByEvent = keyConcurrencyByEvent;
  if (rateLimit !== undefined) flow.rate = claimRateLimit(rateLimit, `queue:${queueName}`, rateLimits);
  // An inline key limit has a limiter of its own: the claim prunes a limiter's starts by its window,
  // which a whole-queue limit of another window beside it on the same name would cut short.
  if (keyRateLimit !== undefined) flow.keyRate = claimRateLimit(keyRateLimit, `queue-key:${queueName}`, rateLimits);
  return flow;
}

/** The limiter a rate limit uses: the named one, or for an inline limit the queue's own (`inlineName`). */
function claimRateLimit(
  reference: RateLimitReference,
  inlineName: string,
  rateLimits: ReadonlyMap<string, RateLimitOptions>,
): ClaimRateLimit {
  const named = typeof reference === 'string';
  const options = named ? rateLimits.get(reference) : reference;
  // Checked at startup (resolveWorkerConfig): a name always has its entry.
  if (!options) throw new InvalidWorkerOptionsError('rateLimit', `names no entry of rateLimits (${reference})`);
  const name = named ? reference : limiterName(inlineName);
  return { name, limit: options.limit, intervalMs: rateIntervalMs(options.intervalSeconds) };
}

/**
 * A limiter's name fits its varchar(255) row: `queue:` and a queue name of up to 255 characters may
 * not, so a long one keeps its start and a hash of the whole (names stay distinct and stable).
 */
function limiterName(name: string): string {
  const characters = [...name];
  if (characters.length <= MAX_NAME_LENGTH) return name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 32);
  return `${characters.slice(0, MAX_NAME_LENGTH - hash.length - 1).join('')}#${hash}`;
}

/** The keyConcurrency of the queue's event classes that set one (@QueueEvent({ keyConcurrency })), by event name. */
function eventKeyConcurrency(queueName: string, eventService: IEventService): Record<string, number> | undefined {
  const listing = eventService as Partial<ListingEventService>;
  if (typeof listing.getRegisteredEvents !== 'function') return undefined;
  let byEvent: Record<string, number> | undefined;
  for (const event of listing.getRegisteredEvents()) {
    if (event.queueName !== queueName) continue;
    const limit = eventService.getEventOptions(event.name)?.keyConcurrency;
    if (limit === undefined) continue;
    // Checked where the class is decorated; checked again here, as another event service may hold anything.
    assertPositiveInteger(`@QueueEvent() of ${event.name}: options.keyConcurrency`, limit);
    (byEvent ??= {})[event.name] = limit;
  }
  return byEvent;
}
