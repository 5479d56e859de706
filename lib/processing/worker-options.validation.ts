import { InvalidWorkerOptionsError } from '../errors/worker.error.js';

export function assertNonEmptyString(field: string, value: unknown): void {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new InvalidWorkerOptionsError(field, `must be a non-empty string (got ${describe(value)})`);
  }
}

export function assertInteger(field: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidWorkerOptionsError(field, `must be an integer ≥ ${min} (got ${describe(value)})`);
  }
}

export function assertNumber(field: string, value: unknown, min: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min) {
    throw new InvalidWorkerOptionsError(field, `must be a finite number ≥ ${min} (got ${describe(value)})`);
  }
}

/**
 * The one rule for retry settings, wherever they are given (module config, runWorker, @QueueEvent):
 * retries counts total attempts (≥ 1), runAfterSeconds is a delay (≥ 0). Optional settings are
 * checked only when present.
 */
export function assertRetrySettings(
  fieldName: (setting: 'retries' | 'runAfterSeconds') => string,
  settings: { retries?: unknown; runAfterSeconds?: unknown },
  required: boolean,
): void {
  if (required || settings.retries !== undefined) assertInteger(fieldName('retries'), settings.retries, 1);
  if (required || settings.runAfterSeconds !== undefined) assertNumber(fieldName('runAfterSeconds'), settings.runAfterSeconds, 0);
}

/** A heartbeat must come well inside the lease it renews, or the lease lapses between beats. */
export function assertHeartbeat(heartbeatSeconds: unknown, leaseSeconds: number, field = 'heartbeatSeconds'): void {
  assertNumber(field, heartbeatSeconds, 0.05);
  if ((heartbeatSeconds as number) > leaseSeconds / 2) {
    throw new InvalidWorkerOptionsError(field, `must be at most half of leaseSeconds (${leaseSeconds}), got ${String(heartbeatSeconds)}`);
  }
}

export function assertBoolean(field: string, value: unknown): void {
  if (typeof value !== 'boolean') throw new InvalidWorkerOptionsError(field, `must be true or false (got ${describe(value)})`);
}

export function assertPlainObject(field: string, value: unknown): asserts value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidWorkerOptionsError(field, `must be an object (got ${describe(value)})`);
  }
}

export function assertKnownKeys(field: string, value: Record<string, unknown>, known: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const where = field ? `${field}.${key}` : key;
      throw new InvalidWorkerOptionsError(where, `is not an option (known: ${known.join(', ')})`);
    }
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return Array.isArray(value) ? 'an array' : typeof value;
}
