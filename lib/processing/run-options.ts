import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import type { CancelTarget } from '../interfaces/cancel.interface.js';
import type { TEventWorkerOptions } from '../interfaces/worker-options.interface.js';
import {
  assertBatchSize,
  assertInteger,
  assertKnownKeys,
  assertPlainObject,
  assertRetrySettings,
  assertStoredName,
  keepCompletedOf,
  rowIdOf,
} from '../common/worker-options.validation.js';

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
