import { UnserializablePayloadError } from '../errors/worker.error.js';
import type { TSerializableValues } from '../interfaces/worker-attributes.interface.js';

/**
 * The one serialization of payloads. Rejects what JSON would silently change (functions, symbols,
 * BigInt, NaN/Infinity, cycles, Dates, Maps, class instances, holes) instead of storing a
 * different value than the one dispatched.
 */
export function serializePayload(eventName: string, payload: unknown): string | null {
  if (payload === undefined || payload === null) return null;
  assertJsonSafe(eventName, payload, 'payload', new Set());
  return JSON.stringify(payload);
}

export function deserializePayload(text: string | null): TSerializableValues | null {
  return text === null ? null : (JSON.parse(text) as TSerializableValues);
}

function assertJsonSafe(eventName: string, value: unknown, path: string, ancestors: Set<object>): void {
  const fail = (problem: string): never => {
    throw new UnserializablePayloadError(eventName, path, problem);
  };
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) fail(`is ${value} (JSON would store null)`);
      return;
    case 'bigint':
      return fail('is a BigInt (JSON cannot store it; send it as a string)');
    case 'function':
      return fail('is a function');
    case 'symbol':
      return fail('is a symbol');
    case 'undefined':
      return fail('is undefined inside an array (JSON would store null)');
  }
  if (value === null) return;
  const object = value as object;
  if (ancestors.has(object)) fail('refers back to itself (a cycle)');
  if (Array.isArray(object)) {
    ancestors.add(object);
    for (let index = 0; index < object.length; index++) {
      if (!(index in object)) fail(`has a hole at index ${index}`);
      assertJsonSafe(eventName, object[index], `${path}[${index}]`, ancestors);
    }
    ancestors.delete(object);
    return;
  }
  const prototype: unknown = Object.getPrototypeOf(object);
  if (prototype !== Object.prototype && prototype !== null) {
    const kind = (object as { constructor?: { name?: string } }).constructor?.name ?? 'object';
    fail(`is a ${kind} instance (only plain objects, arrays and primitives keep their meaning)`);
  }
  if (Object.getOwnPropertySymbols(object).length > 0) fail('has symbol keys');
  ancestors.add(object);
  for (const [key, child] of Object.entries(object)) {
    // An undefined property reads back as undefined after JSON drops it: its meaning is kept.
    if (child !== undefined) assertJsonSafe(eventName, child, `${path}.${key}`, ancestors);
  }
  ancestors.delete(object);
}
