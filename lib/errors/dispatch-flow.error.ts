import { InvalidWorkerOptionsError } from './worker.error.js';

/**
 * Dispatch's flow options (issue 17). Each is an InvalidWorkerOptionsError, so code that catches bad
 * dispatch input as one family (as it does for uniqueKey or priority) catches these too; `field`
 * names the option.
 */

/** Where a concurrency key came from: the dispatch option, `@QueueEvent({ concurrencyKey })`, or the event. */
export type ConcurrencyKeySource = 'dispatch' | 'decorator' | 'event';

/**
 * A concurrency key that cannot be stored (not a string, empty, longer than 255 characters, not
 * well-formed) or could not be computed (the decorator's function or getConcurrencyKey() threw,
 * which is the `cause`). Nothing was stored.
 */
export class InvalidConcurrencyKeyError extends InvalidWorkerOptionsError {
  constructor(
    field: string,
    problem: string,
    readonly eventName: string,
    readonly source: ConcurrencyKeySource,
    options?: { cause?: unknown },
  ) {
    super(field, problem);
    if (options?.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * throttleSeconds or debounceSeconds given in a way that cannot work: without uniqueKey, both
 * together, debounce with delaySeconds or runAt, a value out of range. Nothing was stored.
 */
export class InvalidDispatchFlowError extends InvalidWorkerOptionsError {}

/** `@QueueEvent()`'s concurrencyKey (a function) or keyConcurrency (a positive integer), refused at registration. */
export class InvalidEventFlowOptionsError extends InvalidWorkerOptionsError {
  constructor(
    readonly className: string,
    readonly option: 'concurrencyKey' | 'keyConcurrency',
    problem: string,
  ) {
    super(`@QueueEvent() on ${className}: options.${option}`, problem);
  }
}
