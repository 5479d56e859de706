import { UnserializablePayloadError } from '../errors/worker.error.js';
import type { TSerializableValues } from '../interfaces/worker-attributes.interface.js';
import { MAX_PAYLOAD_DEPTH } from '../worker.defaults.js';

export interface PayloadLimits {
  /** Largest JSON text, in UTF-8 bytes; no limit when omitted (rows already stored are always movable). */
  maxBytes?: number;
}

/**
 * The one serialization of payloads. Rejects what JSON would silently change (functions, symbols,
 * BigInt, NaN/Infinity, cycles, Dates, Maps, class instances, holes) instead of storing a
 * different value than the one dispatched, and what no database round trip survives (nesting
 * deeper than MAX_PAYLOAD_DEPTH, more than `limits.maxBytes`).
 */
export function serializePayload(eventName: string, payload: unknown, limits: PayloadLimits = {}): string | null {
  return checked(eventName, payload, limits).json;
}

export function deserializePayload(text: string | null): TSerializableValues | null {
  return text === null ? null : (JSON.parse(text) as TSerializableValues);
}

/** JSON texts of payload copies checkedPayload() made, until the row holding the copy is stored. */
const checkedJson = new WeakMap<object, string>();

/**
 * A dispatched payload, read and checked once: the plain copy a row holds (so no getter or later
 * change of the caller's object can make it differ from what was checked) and whose JSON the next
 * serializePayload() of that copy returns without writing it again (bulk dispatch would pay twice).
 */
export function checkedPayload(eventName: string, payload: unknown, limits: PayloadLimits): TSerializableValues | null {
  const { copy, json } = checked(eventName, payload, limits);
  if (typeof copy === 'object' && copy !== null && json !== null) checkedJson.set(copy, json);
  return copy;
}

/**
 * Reads every value once, checking it and building a plain copy (data only: no getters, no
 * prototypes), then writes the copy's JSON: a getter that answers 1 and then NaN is checked and
 * stored as the same 1 (a check followed by JSON.stringify of the original would read it twice).
 */
function checked(
  eventName: string,
  payload: unknown,
  limits: PayloadLimits,
): { copy: TSerializableValues | null; json: string | null } {
  if (payload === undefined || payload === null) return { copy: null, json: null };
  if (typeof payload === 'object') {
    // Taken once: a copy stored again later (changed in place, say) is checked again.
    const known = checkedJson.get(payload);
    if (known !== undefined) {
      checkedJson.delete(payload);
      return { copy: payload as TSerializableValues, json: known };
    }
  }
  const copy = copyChecked(eventName, payload, 'payload', new Set(), 0) as TSerializableValues;
  const json = JSON.stringify(copy);
  // Fewer UTF-16 units than a third of the limit cannot exceed it (3 bytes per unit at most): only
  // longer texts are measured.
  if (limits.maxBytes !== undefined && json.length > limits.maxBytes / 3) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > limits.maxBytes) {
      throw new UnserializablePayloadError(
        eventName,
        'payload',
        `is ${bytes} bytes of JSON, more than maxPayloadBytes (${limits.maxBytes})`,
      );
    }
  }
  return { copy, json };
}

function copyChecked(eventName: string, value: unknown, path: string, ancestors: Set<object>, depth: number): unknown {
  const fail = (problem: string): never => {
    throw new UnserializablePayloadError(eventName, path, problem);
  };
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) fail(`is ${value} (JSON would store null)`);
      return value;
    case 'bigint':
      return fail('is a BigInt (JSON cannot store it; send it as a string)');
    case 'function':
      return fail('is a function');
    case 'symbol':
      return fail('is a symbol');
    case 'undefined':
      return fail('is undefined inside an array (JSON would store null)');
  }
  if (value === null) return null;
  const object = value as object;
  if (ancestors.has(object)) fail('refers back to itself (a cycle)');
  // Checked before descending: a 10,000-deep payload is refused, never a stack overflow (here or in a reader).
  if (depth >= MAX_PAYLOAD_DEPTH) fail(`nests more than ${MAX_PAYLOAD_DEPTH} arrays or objects deep`);
  if (Array.isArray(object)) {
    ancestors.add(object);
    const items: unknown[] = new Array(object.length);
    for (let index = 0; index < object.length; index++) {
      if (!(index in object)) fail(`has a hole at index ${index}`);
      items[index] = copyChecked(eventName, object[index], `${path}[${index}]`, ancestors, depth + 1);
    }
    ancestors.delete(object);
    return items;
  }
  const prototype: unknown = Object.getPrototypeOf(object);
  if (prototype !== Object.prototype && prototype !== null) {
    const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
    fail(`is a ${kind} instance (only plain objects, arrays and primitives keep their meaning)`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) fail('has symbol keys');
  ancestors.add(object);
  const copy: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(object)) {
    // An undefined property reads back as undefined after JSON drops it: its meaning is kept.
    if (child === undefined) continue;
    const copied = copyChecked(eventName, child, `${path}.${key}`, ancestors, depth + 1);
    // An own "__proto__" key stays a key (assigning it would set the copy's prototype instead).
    if (key === '__proto__')
      Object.defineProperty(copy, key, { value: copied, enumerable: true, writable: true, configurable: true });
    else copy[key] = copied;
  }
  ancestors.delete(object);
  return copy;
}
