import type { BackoffOption } from '../interfaces/backoff.interface.js';
import { MAX_DELAY_SECONDS } from '../worker.defaults.js';

export const DEFAULT_MAX_BACKOFF_SECONDS = 3600;

/**
 * The one retry policy: seconds to wait after failed attempt `attempt` (1-based). A backoff function
 * that throws or returns something other than a finite number ≥ 0 is reported through `onInvalid`
 * and the fixed delay is used, so a bug in it never loses the event.
 */
export function retryDelaySeconds(
  backoff: BackoffOption | undefined,
  runAfterSeconds: number,
  attempt: number,
  error: Error,
  onInvalid: (problem: string) => void,
  random: () => number = Math.random,
): number {
  if (backoff === undefined || backoff === 'fixed') return runAfterSeconds;
  if (typeof backoff === 'function') {
    let seconds: unknown;
    try {
      seconds = backoff(attempt, error);
    } catch (thrown) {
      onInvalid(`threw ${thrown instanceof Error ? thrown.message : String(thrown)}`);
      return runAfterSeconds;
    }
    if (typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0) {
      if (seconds <= MAX_DELAY_SECONDS) return seconds;
      // A due time that far out is no Date (1e300 s): the retry could never be stored.
      onInvalid(`returned ${seconds}, more than the longest delay (${MAX_DELAY_SECONDS} s)`);
      return runAfterSeconds;
    }
    const returned = typeof seconds === 'number' ? String(seconds) : JSON.stringify(seconds);
    onInvalid(`returned ${returned}, not a number of seconds ≥ 0`);
    return runAfterSeconds;
  }
  const options = backoff === 'exponential' ? { type: 'exponential' as const } : backoff;
  if (options.type === 'fixed') return runAfterSeconds;
  const delay = Math.min(
    (runAfterSeconds || 1) * 2 ** (attempt - 1),
    options.maxSeconds ?? DEFAULT_MAX_BACKOFF_SECONDS,
  );
  return options.jitter ? delay / 2 + random() * (delay / 2) : delay;
}
