/**
 * A rate limit's interval in the whole milliseconds its window is counted in (at least 1): the one
 * conversion of `intervalSeconds`, so a queue's claims and WorkerRateLimiter.take() count the same
 * window for the same limiter.
 */
export function rateIntervalMs(intervalSeconds: number): number {
  return Math.max(1, Math.round(intervalSeconds * 1000));
}
