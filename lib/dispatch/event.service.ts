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
import type { IWorkerCreator } from '../interfaces/worker-creator.interface.js';
import { DEFAULT_MAX_PAYLOAD_BYTES, DEFAULT_RETRIES, MAX_DELAY_SECONDS } from '../worker.constants.js';
import type { EventClass, IBaseEvent } from '../interfaces/base-event.interface.js';
import {
  type DependencyResolver,
  injectEventDependencies,
  resolveEventDependencies,
} from '../events/event-dependencies.js';
import { EventRegistry } from '../events/event-registry.js';
import { checkedPayload } from '../events/payload-serializer.js';
import type { WorkerLifecycle } from '../lifecycle/worker-lifecycle.js';
import type { DatabaseClock } from '../storage/database-clock.js';
import { TypeOrmWorkerCreator } from '../storage/typeorm-worker.creator.js';
import { TypeOrmWorkerModel } from '../storage/typeorm-worker.model.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type { EntityManager } from 'typeorm';

const DISPATCH_OPTION_KEYS = ['manager', 'delaySeconds', 'runAt', 'priority', 'uniqueKey'] as const;

/** Checks the dispatch options before anything is stored. */
function assertDispatchOptions(options: DispatchOptions): void {
  const raw: unknown = options;
  assertPlainObject('dispatch options', raw);
  assertKnownKeys('', raw, DISPATCH_OPTION_KEYS);
  if (options.priority !== undefined) assertPriority('priority', options.priority);
  if (options.uniqueKey !== undefined) assertStoredName('uniqueKey', options.uniqueKey);
}

/** When a dispatched row becomes due: now, or later by delaySeconds or runAt. */
function dueTime(options: DispatchOptions, now: Date): Date | undefined {
  if (options.delaySeconds !== undefined && options.runAt !== undefined) {
    throw new InvalidWorkerOptionsError('delaySeconds', 'cannot be combined with runAt: give one of them');
  }
  if (options.delaySeconds !== undefined) {
    assertNumber('delaySeconds', options.delaySeconds, 0, MAX_DELAY_SECONDS);
    return new Date(now.getTime() + options.delaySeconds * 1000);
  }
  if (options.runAt !== undefined) {
    if (!(options.runAt instanceof Date) || Number.isNaN(options.runAt.getTime())) {
      throw new InvalidWorkerOptionsError(
        'runAt',
        `must be a valid Date (got ${options.runAt instanceof Date ? 'Invalid Date' : JSON.stringify(options.runAt)})`,
      );
    }
    return options.runAt;
  }
  return undefined;
}

/** A unique key is only enforced by the package's own tables. */
function assertKeyable(model: IWorkerModel, options: DispatchOptions): void {
  if (options.uniqueKey !== undefined && !(model instanceof TypeOrmWorkerModel)) {
    throw new WorkerError(
      'dispatch(event, { uniqueKey }) needs the TypeORM worker creator: a replaced creator cannot enforce the key',
    );
  }
}

async function insertWithin(model: IWorkerModel, manager: EntityManager): Promise<void> {
  assertTransactionalDispatch(manager);
  if (!(model instanceof TypeOrmWorkerModel)) {
    throw new WorkerError(
      'dispatch(event, { manager }) needs the TypeORM worker creator: a replaced creator cannot join a transaction',
    );
  }
  await model.insert(manager);
}

function assertTransactionalDispatch(manager: EntityManager): void {
  if (manager.connection.options.type === 'better-sqlite3') {
    // TypeORM runs every better-sqlite3 query on one connection: an open transaction there would
    // also take in the workers' claims and completions and every other dispatch of the process.
    throw new WorkerError(
      'dispatch(event, { manager }) needs PostgreSQL or MySQL/MariaDB: on SQLite all queries share one connection, ' +
        'so a transaction would absorb the writes of every worker and dispatch of the process',
    );
  }
}

export interface EventServiceOptions {
  /** Builds the row model a queued event is stored with. */
  workerCreator?: IWorkerCreator;
  /** Event classes to register besides the @QueueEvent() ones (needed for classes that only override getQueueName()). */
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
 * The seed's event service: `dispatch(event)` stores queued events for a worker and runs the rest at
 * once. Injectable under WorkerModule; usable on its own with `new EventService({ workerCreator })`.
 */
export class EventService implements IEventService {
  private readonly registry: EventRegistry;
  private workerCreator?: IWorkerCreator;
  private readonly resolveDependency?: DependencyResolver;
  private readonly retriesFor: (queueName: string) => number;
  private readonly lifecycle?: WorkerLifecycle;
  private readonly maxPayloadBytes: number;

  constructor(options: EventServiceOptions = {}) {
    this.maxPayloadBytes = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    assertMaxPayloadBytes('maxPayloadBytes', this.maxPayloadBytes);
    this.registry = new EventRegistry(options.events);
    this.workerCreator = options.workerCreator;
    this.resolveDependency = options.resolveDependency;
    this.retriesFor = options.retriesFor ?? (() => DEFAULT_RETRIES);
    this.lifecycle = options.lifecycle;
  }

  /**
   * Rows are stamped (created, due after delaySeconds) on the database's clock where the creator
   * stores them in one (see DatabaseClock), so a process whose clock is off neither delays its
   * events nor makes them due early; runAt is an absolute instant and stored as given.
   */
  private clock(): DatabaseClock | undefined {
    return this.workerCreator instanceof TypeOrmWorkerCreator ? this.workerCreator.clock : undefined;
  }

  setWorkerCreator(workerCreator: IWorkerCreator): void {
    this.workerCreator = workerCreator;
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
    if (options.manager) await insertWithin(model, options.manager);
    else await model.saveWorkerData();
    const attributes = model.getWorkerData();
    // A taken unique key adopts the existing row: nothing new was dispatched.
    const added = !(model instanceof TypeOrmWorkerModel) || model.insertedNewRow;
    // Within a caller's transaction the row becomes visible when that transaction commits.
    if (attributes && added)
      await this.lifecycle?.emit({ name: 'dispatched', queueName, eventName, attributes, event });
    return attributes?.id;
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

  /** buildWorkerModel() with the options already checked and the times worked out (dispatchMany does that once for all events). */
  private modelOf(
    event: IBaseEvent,
    queueName: string,
    options: DispatchOptions,
    times: { now: Date; availableAt: Date | undefined },
  ): { model: IWorkerModel; eventName: string } {
    const { attributes, eventName } = this.attributesOf(event, queueName, options, times);
    if (!this.workerCreator) throw new WorkerNotConfiguredError('EventService worker creator', 'setWorkerCreator');
    const model = this.workerCreator.createWorkerModel(attributes);
    assertKeyable(model, options);
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
    const attributes: IWorkerAttributes = {
      payload: checkedPayload(eventName, event.getPayload(), { maxBytes: this.maxPayloadBytes }),
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
    return { attributes, eventName };
  }

  /**
   * Stores many queued events in as few statements as the database allows (multi-row INSERTs of
   * thousands of rows), all or none: in the caller's transaction with `options.manager`, else in one
   * of its own. `options` apply to every event (delaySeconds, runAt, priority, manager; not
   * uniqueKey). Resolves to the ids in the order of `events`. Events without a queue are refused.
   */
  async dispatchMany(events: IBaseEvent[], options: DispatchOptions = {}): Promise<string[]> {
    if (!Array.isArray(events)) throw new InvalidWorkerOptionsError('events', 'must be an array of queued events');
    if (options.uniqueKey !== undefined) {
      throw new InvalidWorkerOptionsError(
        'uniqueKey',
        'cannot be given to dispatchMany (one key cannot hold several events): dispatch keyed events one by one',
      );
    }
    assertDispatchOptions(options);
    // One statement, one instant: every row of it is created (and due) at the same time.
    const clock = this.clock();
    const now = new Date(clock ? await clock.current(options.manager) : Date.now());
    const times = { now, availableAt: dueTime(options, now) };
    const queueOf = (event: IBaseEvent, index: number): string => {
      const queueName = event?.getQueueName?.();
      if (!queueName) {
        throw new WorkerError(
          `dispatchMany() takes queued events only: events[${index}] (${event?.constructor?.name ?? typeof event}) has no queue`,
        );
      }
      return queueName;
    };
    if (options.manager) assertTransactionalDispatch(options.manager);
    if (this.workerCreator instanceof TypeOrmWorkerCreator && !this.lifecycle?.hasListeners) {
      // Nothing needs a model per row (no 'dispatched' listener): rows go straight from the events.
      const rows = events.map(
        (event, index) => this.attributesOf(event, queueOf(event, index), options, times).attributes,
      );
      return this.workerCreator.insertNewRows(rows, options.manager);
    }
    const built = events.map((event, index) => {
      const queueName = queueOf(event, index);
      return { ...this.modelOf(event, queueName, options, times), queueName, event };
    });
    const models = built.map(({ model }) => model);
    if (models.every((model): model is TypeOrmWorkerModel => model instanceof TypeOrmWorkerModel)) {
      await TypeOrmWorkerModel.insertMany(models, options.manager);
    } else if (options.manager) {
      throw new WorkerError(
        'dispatchMany(events, { manager }) needs the TypeORM worker creator: a replaced creator cannot join a transaction',
      );
    } else {
      for (const model of models) await model.saveWorkerData();
    }
    const ids = models.map(
      (model) => (model instanceof TypeOrmWorkerModel ? model.id : model.getWorkerData()?.id) ?? '',
    );
    if (this.lifecycle?.hasListeners) {
      for (const { model, queueName, eventName, event } of built) {
        const attributes = model.getWorkerData();
        if (attributes) await this.lifecycle.emit({ name: 'dispatched', queueName, eventName, attributes, event });
      }
    }
    return ids;
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
