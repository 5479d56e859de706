/**
 * Log and error texts of nestjs-workers that are not inside an error class, one section per area, as
 * small functions or constants. An error class keeps its own message.
 */

// ─── Module: WorkerModule and its core providers, the explorer, health and metrics ───────────────

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
