/** Seconds before attempt `attempt + 1`, given the attempt that just failed (1-based) and its error. */
export type BackoffFunction = (attempt: number, error: Error) => number;

/**
 * How the delay before a retry grows:
 * - 'fixed' (default, larascript-events' meaning): always `runAfterSeconds`;
 * - 'exponential': `runAfterSeconds` (1 s when 0) doubled per failed attempt, at most `maxSeconds`
 *   (default 3600); `jitter: true` picks uniformly between half that delay and all of it;
 * - a function `(attempt, error) => seconds`.
 */
export type BackoffOption =
  | 'fixed'
  | 'exponential'
  | { type: 'fixed' }
  | { type: 'exponential'; maxSeconds?: number; jitter?: boolean }
  | BackoffFunction;
