import { OPTIONAL_PROPERTY_DEPS_METADATA, PROPERTY_DEPS_METADATA } from '@nestjs/common/constants.js';
import { EventDependencyError } from '../errors/worker.error.js';
import type { BaseEvent } from './base-event.js';

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
export function injectEventDependencies(event: BaseEvent, resolve: DependencyResolver | undefined): void {
  const eventClass = event.constructor;
  const dependencies = (Reflect.getMetadata(PROPERTY_DEPS_METADATA, eventClass) ?? []) as PropertyDependency[];
  if (dependencies.length === 0) return;
  const optional = (Reflect.getMetadata(OPTIONAL_PROPERTY_DEPS_METADATA, eventClass) ?? []) as (string | symbol)[];
  for (const { key, type } of dependencies) {
    const token = unwrapForwardRef(type);
    let instance: unknown;
    try {
      if (!resolve) throw new Error('no dependency resolver (outside Nest, pass resolveDependency to EventService)');
      instance = resolve(token);
    } catch (error) {
      if (optional.includes(key)) continue;
      throw new EventDependencyError(event.getName(), String(key), describeToken(token), error);
    }
    (event as unknown as Record<string | symbol, unknown>)[key] = instance;
  }
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
