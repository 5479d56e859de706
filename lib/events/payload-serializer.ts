import { UnserializablePayloadError } from '../errors/worker.error.js';
import type { TSerializableValues } from '../interfaces/worker-attributes.interface.js';
import { MAX_PAYLOAD_DEPTH } from '../worker.constants.js';

export interface PayloadLimits {
  /** Largest JSON text, in UTF-8 bytes; no limit when omitted (rows already stored are always movable). */
  maxBytes?: number;
}

/**
 * The one serialization of payloads. Rejects what JSON would silently change (functions, symbols,
 * BigInt, NaN/Infinity, cycles, Dates, Maps, class instances, holes) instead of storing a
 * different value than the one dispatched, and what no database round trip survives (nesting
 * deeper than MAX_PAYLOAD_DEPTH, more than `limits.maxBytes`).
 *
 * The JSON is written in the same pass that checks it, reading every value once: a getter that
 * answers 1 and then NaN is checked and stored as the same 1 (JSON.stringify after a separate check
 * would read it twice and store null).
 */
export function serializePayload(eventName: string, payload: unknown, limits: PayloadLimits = {}): string | null {
  if (payload === undefined || payload === null) return null;
  const json = writeJson(eventName, payload, 'payload', new Set(), 0);
  if (limits.maxBytes !== undefined && json.length > limits.maxBytes / 3) {
    // Fewer UTF-16 units than a third of the limit cannot exceed it (3 bytes per unit at most): only longer texts are measured.
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > limits.maxBytes) {
      throw new UnserializablePayloadError(eventName, 'payload', `is ${bytes} bytes of JSON, more than maxPayloadBytes (${limits.maxBytes})`);
    }
  }
  return json;
}

export function deserializePayload(text: string | null): TSerializableValues | null {
  return text === null ? null : (JSON.parse(text) as TSerializableValues);
}

function writeJson(eventName: string, value: unknown, path: string, ancestors: Set<object>, depth: number): string {
  const fail = (problem: string): never => {
    throw new UnserializablePayloadError(eventName, path, problem);
  };
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) fail(`is ${value} (JSON would store null)`);
      return JSON.stringify(value);
    case 'bigint':
      return fail('is a BigInt (JSON cannot store it; send it as a string)');
    case 'function':
      return fail('is a function');
    case 'symbol':
      return fail('is a symbol');
    case 'undefined':
      return fail('is undefined inside an array (JSON would store null)');
  }
  if (value === null) return 'null';
  const object = value as object;
  if (ancestors.has(object)) fail('refers back to itself (a cycle)');
  // Checked before descending: a 10,000-deep payload is refused, never a stack overflow (here or in a reader).
  if (depth >= MAX_PAYLOAD_DEPTH) fail(`nests more than ${MAX_PAYLOAD_DEPTH} arrays or objects deep`);
  if (Array.isArray(object)) {
    ancestors.add(object);
    const items: string[] = [];
    for (let index = 0; index < object.length; index++) {
      if (!(index in object)) fail(`has a hole at index ${index}`);
      items.push(writeJson(eventName, object[index], `${path}[${index}]`, ancestors, depth + 1));
    }
    ancestors.delete(object);
    return `[${items.join(',')}]`;
  }
  const prototype: unknown = Object.getPrototypeOf(object);
  if (prototype !== Object.prototype && prototype !== null) {
    const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
    fail(`is a ${kind} instance (only plain objects, arrays and primitives keep their meaning)`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) fail('has symbol keys');
  ancestors.add(object);
  const members: string[] = [];
  for (const [key, child] of Object.entries(object)) {
    // An undefined property reads back as undefined after JSON drops it: its meaning is kept.
    if (child !== undefined) members.push(`${JSON.stringify(key)}:${writeJson(eventName, child, `${path}.${key}`, ancestors, depth + 1)}`);
  }
  ancestors.delete(object);
  return `{${members.join(',')}}`;
}
