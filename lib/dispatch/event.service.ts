import {
  EventDependencyError,
  InvalidWorkerOptionsError,
  UnknownEventError,
  WorkerError,
  WorkerNotConfiguredError,
} from '../errors/worker.error.js';
import {
  assertKnownKeys,
  assertMaxPayloadBytes,
  assertNumber,
  assertPlainObject,
  assertPriority,
  assertStoredName,
} from '../common/worker-options.validation.js';
import type { DispatchOptions, IEventService } from '../interfaces/event-service.interface.js';
import type { QueueEventOptions } from '../interfaces/queue-event-options.interface.js';
import type { IWorkerAttributes, TSerializableValues } from '../interfaces/worker-attributes.interface.js';
import {
  type IWorkerCreator,
  type IWorkerRowClock,
  type IWorkerRowStore,
  isWorkerRowStore,
} from '../interfaces/worker-creator.interface.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_RETRIES, MAX_DELAY_SECONDS } from '../worker.defaults.js';
import type { EventClass, IBaseEvent } from '../interfaces/base-event.interface.js';
import {
  type DependencyResolver,
  injectEventDependencies,
  resolveEventDependencies,
} from '../events/event-dependencies.js';
import { EventRegistry } from '../events/event-registry.js';
import { checkedPayload } from '../events/payload-serializer.js';
import type { WorkerLifecycle } from '../lifecycle/worker-lifecycle.js';
import { rowStoreOfModel, rowStoreOfModels } from '../storage/model-row-store.js';
import { joinsCallerTransactions } from '../storage/storage-capabilities.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type { EntityManager } from 'typeorm';
import { dispatchFlowMessages, dispatchMessages } from '../worker.messages.js';
import { InvalidDispatchFlowError } from '../errors/dispatch-flow.error.js';
import { concurrencyKeyOf, shown } from '../events/concurrency-key.js';

const DISPATCH_OPTION_KEYS = [
  'manager',
  'delaySeconds',
  'runAt',
  'priority',
  'uniqueKey',
  'concurrencyKey',
  'throttleSeconds',
  'debounceSeconds',
] as const;

/** Checks the dispatch options before anything is stored. */
function assertDispatchOptions(options: DispatchOptions): void {
  const raw: unknown = options;
  assertPlainObject('dispatch options', raw);
  assertKnownKeys('', raw, DISPATCH_OPTION_KEYS);
  if (options.priority !== undefined) assertPriority('priority', options.priority);
  if (options.uniqueKey !== undefined) assertStoredName('uniqueKey', options.uniqueKey);
  assertFlowOptions(options);
}

/**
 * throttleSeconds and debounceSeconds: each works on a unique key, one at a time. A throttled event
 * may be delayed (delaySeconds, runAt: the period's event waits that long); a debounced one may not,
 * since debounce sets its due time itself (debounceSeconds after the last dispatch of the burst).
 */
function assertFlowOptions(options: DispatchOptions): void {
  const { throttleSeconds, debounceSeconds } = options;
  if (throttleSeconds === undefined && debounceSeconds === undefined) return;
  const option = throttleSeconds !== undefined ? 'throttleSeconds' : 'debounceSeconds';
  if (throttleSeconds !== undefined && debounceSeconds !== undefined) {
    throw new InvalidDispatchFlowError('throttleSeconds', dispatchFlowMessages.throttleAndDebounce);
  }
  if (options.uniqueKey === undefined) {
    throw new InvalidDispatchFlowError(option, dispatchFlowMessages.needsUniqueKey(option));
  }
  if (throttleSeconds !== undefined) {
    if (typeof throttleSeconds !== 'number' || !Number.isFinite(throttleSeconds) || throttleSeconds <= 0) {
      throw new InvalidDispatchFlowError(
        'throttleSeconds',
        dispatchFlowMessages.throttleNotPositive(shown(throttleSeconds)),
      );
    }
    asFlowError(() => assertNumber('throttleSeconds', throttleSeconds, 0, MAX_DELAY_SECONDS));
    return;
  }
  for (const dueOption of ['delaySeconds', 'runAt'] as const) {
    if (options[dueOption] !== undefined) {
      throw new InvalidDispatchFlowError('debounceSeconds', dispatchFlowMessages.debounceAndDueTime(dueOption));
    }
  }
  asFlowError(() => assertNumber('debounceSeconds', debounceSeconds, 0, MAX_DELAY_SECONDS));
}

/** A shared range check's error, as the flow options' own type. */
function asFlowError(check: () => void): void {
  try {
    check();
  } catch (error) {
    if (error instanceof InvalidWorkerOptionsError) throw new InvalidDispatchFlowError(error.field, error.problem);
    throw error;
  }
}

/** When a dispatched row becomes due: now, or later by delaySeconds, runAt or debounceSeconds. */
function dueTime(options: DispatchOptions, now: Date): Date | undefined {
  if (options.delaySeconds !== undefined && options.runAt !== undefined) {
    throw new InvalidWorkerOptionsError('delaySeconds', dispatchMessages.delayAndRunAt);
  }
  if (options.debounceSeconds !== undefined) return new Date(now.getTime() + options.debounceSeconds * 1000);
  if (options.delaySeconds !== undefined) {
    assertNumber('delaySeconds', options.delaySeconds, 0, MAX_DELAY_SECONDS);
    return new Date(now.getTime() + options.delaySeconds * 1000);
  }
  if (options.runAt !== undefined) {
    if (!(options.runAt instanceof Date) || Number.isNaN(options.runAt.getTime())) {
      throw new InvalidWorkerOptionsError('runAt', dispatchMessages.invalidDate(options.runAt));
    }
    return options.runAt;
  }
  return undefined;
}

/** Refuses a caller's transaction on a database where it would take in the whole process's writes. */
function assertTransactionalDispatch(manager: EntityManager): void {
  if (!joinsCallerTransactions(manager.connection)) throw new WorkerError(dispatchMessages.transactionOnSqlite);
}

export interface EventServiceOptions {
  /** Builds the row model a queued event is stored with. */
  workerCreator?: IWorkerCreator;
  /**
   * Event classes to register besides the @QueueEvent() ones (needed for classes that only
   * override getQueueName()).
   */
  events?: EventClass[];
  /** Resolves `@Inject()` properties of events (WorkerModule wires Nest's ModuleRef). */
  resolveDependency?: DependencyResolver;
  /** Maximum attempts recorded on a new row of that queue when the event class declares none. */
  retriesFor?: (queueName: string) => number;
  /** Where 'dispatched' is announced (@OnWorkerEvent() hooks, metrics). */
  lifecycle?: WorkerLifecycle;
  /** Largest payload dispatch() stores, in bytes of its JSON (UTF-8). Default 1 MiB. */
  maxPayloadBytes?: number;
}

/**
 * larascript-events' event service: `dispatch(event)` stores queued events for a worker and runs the rest at
 * once. Injectable under WorkerModule; usable on its own with `new EventService({ workerCreator })`.
 */
export class EventService implements IEventService {
  private readonly registry: EventRegistry;
  private workerCreator?: IWorkerCreator;
  /** The creator when it stores rows itself (IWorkerRowStore), detected once when it is given. */
  private rowStore?: IWorkerRowStore;
  private readonly resolveDependency?: DependencyResolver;
  private readonly retriesFor: (queueName: string) => number;
  private readonly lifecycle?: WorkerLifecycle;
  private readonly maxPayloadBytes: number;

  constructor(options: EventServiceOptions = {}) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    assertMaxPayloadBytes('maxPayloadBytes', this.maxPayloadBytes);
    this.registry = new EventRegistry(options.events);
    this.useCreator(options.workerCreator);
    this.resolveDependency = options.resolveDependency;
    this.retriesFor = options.retriesFor ?? (() => DEFAULT_RETRIES);
    this.lifecycle = options.lifecycle;
  }

  /**
   * Rows are stamped (created, due after delaySeconds) on the database's clock where the creator
   * stores them in one (see DatabaseClock), so a process whose clock is off neither delays its
   * events nor makes them due early; runAt is an absolute instant and stored as given.
   */
  private clock(): IWorkerRowClock | undefined {
    return this.rowStore?.clock;
  }

  setWorkerCreator(workerCreator: IWorkerCreator): void {
    this.useCreator(workerCreator);
  }

  /** Not setWorkerCreator(), which subclasses may override: the constructor's creator is always taken. */
  private useCreator(workerCreator: IWorkerCreator | undefined): void {
    this.workerCreator = workerCreator;
    this.rowStore = isWorkerRowStore(workerCreator) ? workerCreator : undefined;
  }

  registerEvents(...eventClasses: EventClass[]): void {
    this.registry.register(...eventClasses);
  }

  getRegisteredEvents(): { name: string; eventClass: EventClass; queueName?: string }[] {
    return this.registry.all().map(({ name, eventClass, queueName }) => ({ name, eventClass, queueName }));
  }

  /**
   * Resolves the `@Inject()` properties of this service's own events now (those it lists, or every
   * collected @QueueEvent() class when it lists none), returning what cannot be resolved. A service
   * that lists its events does not report another module's classes it merely collected.
   */
  checkEventDependencies(): EventDependencyError[] {
    const problems: EventDependencyError[] = [];
    for (const { name, eventClass } of this.registry.own()) {
      try {
        resolveEventDependencies(eventClass, name, this.resolveDependency);
      } catch (error) {
        if (error instanceof EventDependencyError) problems.push(error);
        else throw error;
      }
    }
    return problems;
  }

  /**
   * Stores a queued event and resolves to its row id once the row is written (committed, unless
   * `options.manager` makes it part of the caller's transaction); runs an unqueued event at once.
   */
  async dispatch(event: IBaseEvent, options: DispatchOptions = {}): Promise<string | undefined> {
    const queueName = event.getQueueName();
    if (!queueName) {
      injectEventDependencies(event, this.resolveDependency);
      await event.execute();
      return undefined;
    }
    await this.clock()?.sync(options.manager);
    const { model, eventName } = this.buildWorkerModel(event, queueName, options);
    const added = await this.store(model, options);
    const attributes = model.getWorkerData();
    // Within a caller's transaction the row becomes visible when that transaction commits.
    if (attributes && added)
      await this.lifecycle?.emit({ name: 'dispatched', queueName, eventName, attributes, event });
    return attributes?.id;
  }

  /**
   * Stores a built model (through the caller's transaction with `manager`); false when its unique key
   * was taken and the existing row adopted: nothing new was dispatched.
   */
  private async store(model: IWorkerModel, options: DispatchOptions): Promise<boolean> {
    const { manager, throttleSeconds, debounceSeconds } = options;
    const rowStore = this.rowStore ?? rowStoreOfModel(model);
    if (manager) {
      assertTransactionalDispatch(manager);
      if (!rowStore) throw new WorkerError(dispatchMessages.managerNeedsRowStore('dispatch(event, { manager })'));
    }
    // The throttle's window and the debounce's replacement are the row store's (checked in modelOf).
    if (throttleSeconds !== undefined) {
      // Whole milliseconds, as until_at stores them; a period below 1 ms is one.
      const periodMs = Math.max(1, Math.round(throttleSeconds * 1000));
      return (await rowStore!.insertThrottled!(model, periodMs, manager)).inserted;
    }
    if (debounceSeconds !== undefined) return (await rowStore!.insertDebounced!(model, manager)).inserted;
    if (rowStore) return (await rowStore.insertModel(model, manager)).inserted;
    await model.saveWorkerData();
    return true;
  }

  /**
   * The row a dispatch of a queued event stores, built and checked but not stored (the recurring
   * scheduler stores it in its own transaction). Throws what dispatch() throws for bad input.
   */
  buildWorkerModel(
    event: IBaseEvent,
    queueName: string,
    options: DispatchOptions = {},
  ): { model: IWorkerModel; eventName: string } {
    assertDispatchOptions(options);
    const now = new Date(this.clock()?.now() ?? Date.now());
    return this.modelOf(event, queueName, options, { now, availableAt: dueTime(options, now) });
  }

  /**
   * buildWorkerModel() with the options already checked and the times worked out (dispatchMany does
   * that once for all events).
   */
  private modelOf(
    event: IBaseEvent,
    queueName: string,
    options: DispatchOptions,
    times: { now: Date; availableAt: Date | undefined },
  ): { model: IWorkerModel; eventName: string } {
    const { attributes, eventName } = this.attributesOf(event, queueName, options, times);
    if (!this.workerCreator) throw new WorkerNotConfiguredError('EventService worker creator', 'setWorkerCreator');
    const model = this.workerCreator.createWorkerModel(attributes);
    // A unique key is only enforced where the creator, or the storage of its models, stores the rows.
    const rowStore = this.rowStore ?? rowStoreOfModel(model);
    if (options.uniqueKey !== undefined && !rowStore?.enforcesUniqueKeys) {
      throw new WorkerError(dispatchMessages.uniqueKeyNeedsRowStore);
    }
    if (options.throttleSeconds !== undefined && !rowStore?.insertThrottled) {
      throw new WorkerError(dispatchFlowMessages.needsRowStore('throttleSeconds'));
    }
    if (options.debounceSeconds !== undefined && !rowStore?.insertDebounced) {
      throw new WorkerError(dispatchFlowMessages.needsRowStore('debounceSeconds'));
    }
    return { model, eventName };
  }

  /** The attributes of the row a queued event is stored as; throws for an event class that is not registered. */
  private attributesOf(
    event: IBaseEvent,
    queueName: string,
    options: DispatchOptions,
    times: { now: Date; availableAt: Date | undefined },
  ): { attributes: IWorkerAttributes; eventName: string } {
    const eventName = event.getName();
    const registered = this.registry.find(eventName);
    if (registered?.eventClass !== event.constructor) throw new UnknownEventError(eventName);
    // getQueueName() may compute the name: it is checked on every dispatch, like any stored name.
    assertStoredName(`queue name of ${eventName}`, queueName);
    // Read and checked once: the row stores a copy parsed from the checked JSON, so a getter that
    // answers differently on a second read cannot change what is stored.
    const payload = checkedPayload(eventName, event.getPayload(), { maxBytes: this.maxPayloadBytes });
    // From the stored copy of the payload: the key is what the row will say it is.
    const concurrencyKey = concurrencyKeyOf(event, eventName, registered.options, payload, options.concurrencyKey);
    const attributes: IWorkerAttributes = {
      payload,
      attempts: 0,
      retries: registered.options.retries ?? this.retriesFor(queueName),
      queueName,
      eventName,
      createdAt: times.now,
      updatedAt: times.now,
      availableAt: times.availableAt,
      priority: options.priority ?? registered.options.priority,
      uniqueKey: options.uniqueKey,
    };
    if (concurrencyKey !== undefined) attributes.concurrencyKey = concurrencyKey;
    return { attributes, eventName };
  }

  /**
   * Stores many queued events in as few statements as the database allows (multi-row INSERTs of
   * thousands of rows), all or none: in the caller's transaction with `options.manager`, else in one
   * of its own. `options` apply to every event (delaySeconds, runAt, priority, manager,
   * concurrencyKey; not uniqueKey, throttleSeconds, debounceSeconds: each event's concurrency key is
   * otherwise its own, from its class or its getConcurrencyKey()). Resolves to the ids in the order
   * of `events`. Events without a queue are refused.
   */
  async dispatchMany(events: IBaseEvent[], options: DispatchOptions = {}): Promise<string[]> {
    if (!Array.isArray(events)) throw new InvalidWorkerOptionsError('events', dispatchMessages.notAnEventArray);
    for (const option of ['throttleSeconds', 'debounceSeconds'] as const) {
      if (options[option] !== undefined) {
        throw new InvalidDispatchFlowError(option, dispatchFlowMessages.inDispatchMany(option));
      }
    }
    if (options.uniqueKey !== undefined) {
      throw new InvalidWorkerOptionsError('uniqueKey', dispatchMessages.uniqueKeyInDispatchMany);
    }
    assertDispatchOptions(options);
    // One statement, one instant: every row of it is created (and due) at the same time.
    const clock = this.clock();
    const now = new Date(clock ? await clock.current(options.manager) : Date.now());
    const times = { now, availableAt: dueTime(options, now) };
    const queueOf = (event: IBaseEvent, index: number): string => {
      const queueName = event?.getQueueName?.();
      if (!queueName) {
        throw new WorkerError(dispatchMessages.unqueuedInDispatchMany(index, event?.constructor?.name ?? typeof event));
      }
      return queueName;
    };
    if (options.manager) assertTransactionalDispatch(options.manager);
    const { rowStore } = this;
    if (rowStore && !this.lifecycle?.hasListeners) {
      // Nothing needs a model per row (no 'dispatched' listener): rows go straight from the events.
      const rows = events.map(
        (event, index) => this.attributesOf(event, queueOf(event, index), options, times).attributes,
      );
      return rowStore.insertNewRows(rows, options.manager);
    }
    const built = events.map((event, index) => {
      const queueName = queueOf(event, index);
      return { ...this.modelOf(event, queueName, options, times), queueName, event };
    });
    const models = built.map(({ model }) => model);
    const ids = await this.storeMany(models, options.manager);
    if (this.lifecycle?.hasListeners) {
      for (const { model, queueName, eventName, event } of built) {
        const attributes = model.getWorkerData();
        if (attributes) await this.lifecycle.emit({ name: 'dispatched', queueName, eventName, attributes, event });
      }
    }
    return ids;
  }

  /** Stores built models, all or none where the creator stores rows itself; their ids in order. */
  private async storeMany(models: IWorkerModel[], manager: EntityManager | undefined): Promise<string[]> {
    const rowStore = this.rowStore ?? rowStoreOfModels(models);
    if (rowStore) return rowStore.insertModels(models, manager);
    // No events, nothing to store: no transaction to join either.
    if (models.length === 0) return [];
    if (manager) throw new WorkerError(dispatchMessages.managerNeedsRowStore('dispatchMany(events, { manager })'));
    for (const model of models) await model.saveWorkerData();
    return models.map((model) => model.getWorkerData()?.id ?? '');
  }

  createEvent(eventName: string, payload: TSerializableValues | null): IBaseEvent {
    const { eventClass } = this.registry.get(eventName);
    const event = new (eventClass as new (payload: TSerializableValues | null) => IBaseEvent)(payload);
    injectEventDependencies(event, this.resolveDependency);
    return event;
  }

  getEventOptions(eventName: string): QueueEventOptions | undefined {
    return this.registry.find(eventName)?.options;
  }
}
