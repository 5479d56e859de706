import { assertStoredName } from '../common/worker-options.validation.js';
import { describeError } from '../errors/describe-error.js';
import {
  type ConcurrencyKeySource,
  InvalidConcurrencyKeyError,
  InvalidEventFlowOptionsError,
} from '../errors/dispatch-flow.error.js';
import { InvalidWorkerOptionsError } from '../errors/worker.error.js';
import type { IBaseEvent } from '../interfaces/base-event.interface.js';
import type { QueueEventOptions } from '../interfaces/queue-event-options.interface.js';
import type { TSerializableValues } from '../interfaces/worker-attributes.interface.js';
import { dispatchFlowMessages } from '../worker.messages.js';

/** A value as an error message shows it: strings quoted, other scalars as written, objects by their type. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint' || value == null) {
    return String(value);
  }
  return Array.isArray(value) ? 'an array' : typeof value;
}

/**
 * The concurrency key a dispatched event is stored with: the dispatch option, else the class's
 * `@QueueEvent({ concurrencyKey })` function of the (checked, stored) payload, else the event's
 * getConcurrencyKey(). The first source that is present answers, and undefined from it means no key:
 * a class whose function finds no key in a payload is not overruled by its method. A key is a stored
 * name like a unique key (non-empty, at most 255 characters, compared exactly); anything else, or a
 * source that throws, is an InvalidConcurrencyKeyError naming concurrencyKey, before anything is stored.
 */
export function concurrencyKeyOf(
  event: IBaseEvent,
  eventName: string,
  options: Pick<QueueEventOptions, 'concurrencyKey'>,
  payload: TSerializableValues | null,
  given: unknown,
): string | undefined {
  if (given !== undefined) return checkedKey('concurrencyKey', given, eventName, 'dispatch');
  const computed = options.concurrencyKey;
  if (computed) {
    const field = dispatchFlowMessages.computedKeyField(eventName, 'decorator');
    return checkedKey(
      field,
      computeKey(field, eventName, 'decorator', () => computed(payload as never)),
      eventName,
      'decorator',
    );
  }
  const method = event.getConcurrencyKey;
  if (typeof method !== 'function') return undefined;
  const field = dispatchFlowMessages.computedKeyField(eventName, 'event');
  return checkedKey(
    field,
    computeKey(field, eventName, 'event', () => method.call(event)),
    eventName,
    'event',
  );
}

function computeKey(field: string, eventName: string, source: ConcurrencyKeySource, compute: () => unknown): unknown {
  try {
    return compute();
  } catch (error) {
    const reason = error instanceof Error ? `${error.name}: ${describeError(error)}` : shown(error);
    throw new InvalidConcurrencyKeyError(field, dispatchFlowMessages.keyThrew(reason), eventName, source, {
      cause: error,
    });
  }
}

function checkedKey(field: string, key: unknown, eventName: string, source: ConcurrencyKeySource): string | undefined {
  // A computed source may find no key; a key given at dispatch must be one (undefined was not given).
  if (key === undefined && source !== 'dispatch') return undefined;
  try {
    assertStoredName(field, key);
  } catch (error) {
    if (!(error instanceof InvalidWorkerOptionsError)) throw error;
    throw new InvalidConcurrencyKeyError(field, error.problem, eventName, source);
  }
  return key;
}

/**
 * `@QueueEvent()`'s flow options of a class, checked when the class is registered: concurrencyKey a
 * function of the payload, keyConcurrency a positive integer.
 */
export function assertEventFlowOptions(className: string, options: QueueEventOptions): void {
  const { concurrencyKey, keyConcurrency } = options as Record<string, unknown>;
  if (concurrencyKey !== undefined && typeof concurrencyKey !== 'function') {
    throw new InvalidEventFlowOptionsError(
      className,
      'concurrencyKey',
      dispatchFlowMessages.notAFunction(shown(concurrencyKey)),
    );
  }
  if (
    keyConcurrency !== undefined &&
    (typeof keyConcurrency !== 'number' || !Number.isSafeInteger(keyConcurrency) || keyConcurrency < 1)
  ) {
    throw new InvalidEventFlowOptionsError(
      className,
      'keyConcurrency',
      dispatchFlowMessages.notAPositiveInteger(shown(keyConcurrency)),
    );
  }
}
