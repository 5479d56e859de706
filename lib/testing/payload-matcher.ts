/**
 * A partial of a payload, at every depth: objects may leave keys out; arrays are matched element by
 * element (same length), each element partially.
 */
export type DeepPartial<T> = T extends readonly (infer U)[]
  ? readonly DeepPartial<U>[]
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/** What an assertion accepts for the payload: a partial payload, or a predicate over the whole payload. */
export type PayloadMatcher<P> = DeepPartial<P> | ((payload: P) => boolean);

/**
 * Whether `payload` matches `matcher`: a predicate decides; otherwise every key given in the
 * matcher must match the payload's value at that key (recursively), arrays element by element with
 * the same length, and other values by strict equality.
 */
export function matchesPayload(payload: unknown, matcher: unknown): boolean {
  if (typeof matcher === 'function') return (matcher as (payload: unknown) => unknown)(payload) === true;
  return matchesPartial(payload, matcher);
}

function matchesPartial(actual: unknown, expected: unknown): boolean {
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((element, index) => matchesPartial(actual[index], element))
    );
  }
  if (isObject(expected)) {
    if (!isObject(actual) || Array.isArray(actual)) return false;
    return Object.entries(expected).every(([key, value]) =>
      matchesPartial((actual as Record<string, unknown>)[key], value),
    );
  }
  return actual === expected || (Number.isNaN(actual) && Number.isNaN(expected));
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

/** The matcher as a message shows it: a predicate by its source, a partial payload as JSON. */
export function describeMatcher(matcher: unknown): string {
  if (typeof matcher === 'function') {
    const source = oneLine(String(matcher));
    return `a payload matching the predicate ${truncate(source, 200)}`;
  }
  return `a payload matching ${truncate(describeValue(matcher), 500)}`;
}

/** A payload as JSON text, or a best-effort description of what JSON cannot show. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  try {
    const text = JSON.stringify(value, (_key, entry: unknown) => {
      if (typeof entry === 'bigint') return `${entry}n`;
      if (typeof entry === 'function') return `[function ${entry.name || 'anonymous'}]`;
      if (typeof entry === 'symbol') return entry.toString();
      if (entry === undefined) return '[undefined]';
      return entry;
    });
    return text ?? String(value);
  } catch {
    return String(value);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
