import { OPTIONAL_PROPERTY_DEPS_METADATA, PROPERTY_DEPS_METADATA } from '@nestjs/common/constants.js';
import { EventDependencyError } from '../errors/worker.error.js';
import type { IBaseEvent } from '../interfaces/base-event.interface.js';

/** Resolves a Nest injection token (class, string, symbol) to an instance. */
export type DependencyResolver = (token: unknown) => unknown;

interface PropertyDependency {
  key: string | symbol;
  type: unknown;
}

/**
 * Fills an event's `@Inject()` properties. Events are data built from stored payloads, so Nest
 * cannot construct them; the standard `@Inject(Token)` property decorator still declares what they
 * need, and this resolves it the moment before `execute()`.
 */
export function injectEventDependencies(event: IBaseEvent, resolve: DependencyResolver | undefined): void {
  for (const [key, instance] of resolveEventDependencies(event.constructor, event.getName(), resolve)) {
    (event as unknown as Record<string | symbol, unknown>)[key] = instance;
  }
}

/** Resolves every `@Inject()` property of an event class; throws EventDependencyError for the first that fails. */
export function resolveEventDependencies(
  eventClass: Function,
  eventName: string,
  resolve: DependencyResolver | undefined,
): [string | symbol, unknown][] {
  const dependencies = (Reflect.getMetadata(PROPERTY_DEPS_METADATA, eventClass) ?? []) as PropertyDependency[];
  if (dependencies.length === 0) return [];
  const optional = (Reflect.getMetadata(OPTIONAL_PROPERTY_DEPS_METADATA, eventClass) ?? []) as (string | symbol)[];
  const resolved: [string | symbol, unknown][] = [];
  for (const { key, type } of dependencies) {
    const token = unwrapForwardRef(type);
    try {
      if (!resolve) throw new Error('no dependency resolver (outside Nest, pass resolveDependency to EventService)');
      resolved.push([key, resolve(token)]);
    } catch (error) {
      if (optional.includes(key)) continue;
      throw new EventDependencyError(eventName, String(key), describeToken(token), error);
    }
  }
  return resolved;
}

function unwrapForwardRef(type: unknown): unknown {
  if (type && typeof type === 'object' && 'forwardRef' in type) {
    return (type as { forwardRef: () => unknown }).forwardRef();
  }
  return type;
}

function describeToken(token: unknown): string {
  return typeof token === 'function' ? token.name : String(token);
}
