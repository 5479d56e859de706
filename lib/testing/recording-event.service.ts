import type { BaseEvent } from '../events/base-event.js';
import { EventService, type EventServiceOptions } from '../dispatch/event.service.js';
import { serializePayload } from '../events/payload-serializer.js';
import type { EventDependencyError } from '../errors/worker.error.js';
import type { DispatchOptions } from '../interfaces/event-service.interface.js';
import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';
import type { IWorkerCreator } from '../interfaces/worker-creator.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import { describeMatcher, describeValue, matchesPayload, type PayloadMatcher } from './payload-matcher.js';

/** A concrete event class, as the assertions take it (`MyEvent`). */
export type EventConstructor<E extends BaseEvent = BaseEvent> = new (...args: never[]) => E;

/** The payload type of an event (`BaseEvent<P>` → `P`). */
export type PayloadOf<E extends BaseEvent> = ReturnType<E['getPayload']>;

/** One dispatch the recorder received. */
export interface RecordedDispatch<E extends BaseEvent = BaseEvent> {
  event: E;
  /** The options given to dispatch() (`{}` when none), `manager` included. */
  options: DispatchOptions;
  /**
   * What dispatch() resolved to: "recorded-1", "recorded-2", … for a queued event; undefined for one
   * without a queue.
   */
  id: string | undefined;
  /** The event's queue, undefined for an event the real service would have run at once. */
  queueName: string | undefined;
  /** The registered event name (what a row would store). */
  eventName: string;
}

/** An expectDispatched() / expectNotDispatched() that did not hold; the message says what was dispatched. */
export class DispatchAssertionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/**
 * Row models that are never stored: saving one checks and serializes the payload exactly as the
 * TypeORM model does (so a bad payload rejects with the same UnserializablePayloadError) and hands
 * out the next fake id.
 */
class RecordingWorkerModel implements IWorkerModel {
  constructor(
    private data: IWorkerAttributes,
    private readonly nextId: () => string,
  ) {}

  async createWorkerData(data: IWorkerAttributes): Promise<void> {
    this.data = { ...data, id: undefined };
    await this.saveWorkerData();
  }

  async updateWorkerData(data: IWorkerAttributes): Promise<void> {
    this.data = { ...data, id: this.data.id };
    await this.saveWorkerData();
  }

  getWorkerData<T extends IWorkerAttributes = IWorkerAttributes>(): T | null {
    return this.data as T;
  }

  async saveWorkerData(): Promise<void> {
    serializePayload(this.data.eventName, this.data.payload);
    this.data = { ...this.data, id: this.data.id ?? this.nextId() };
  }

  async deleteWorkerData(): Promise<void> {}
}

class RecordingWorkerCreator implements IWorkerCreator {
  private issued = 0;

  createWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return new RecordingWorkerModel({ ...data, id: undefined }, () => `recorded-${++this.issued}`);
  }

  createFailedWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return this.createWorkerModel(data);
  }

  reset(): void {
    this.issued = 0;
  }
}

/**
 * An EventService for tests: `dispatch()` records the event instead of storing it (or, for an event
 * without a queue, instead of running it), after the same checks the real dispatch makes (the event
 * class is registered, the payload survives JSON), and resolves to "recorded-1", "recorded-2", … for
 * queued events and to undefined for the others. Framework-agnostic: the assertions throw
 * DispatchAssertionError, which every test runner reports as a failure.
 *
 * In a Nest test: `.overrideProvider(EventService).useValue(new RecordingEventService())`. Give it the
 * module's `events` (`new RecordingEventService({ events: [LegacyEvent] })`) when the application
 * lists event classes that are not decorated with @QueueEvent().
 */
export class RecordingEventService extends EventService {
  private readonly recordingCreator: RecordingWorkerCreator;
  private readonly records: RecordedDispatch[] = [];
  private readonly resolvesDependencies: boolean;

  /** The options of EventService; a `workerCreator` among them is ignored (nothing is stored). */
  constructor(options: EventServiceOptions = {}) {
    const recordingCreator = new RecordingWorkerCreator();
    super({ ...options, workerCreator: recordingCreator });
    this.recordingCreator = recordingCreator;
    this.resolvesDependencies = options.resolveDependency !== undefined;
  }

  /** Ignored: the recorder never stores, whatever creator it is given. */
  override setWorkerCreator(_workerCreator: IWorkerCreator): void {}

  /**
   * No dependency problems unless a `resolveDependency` was given: the recorder runs no event, so
   * events' `@Inject()` properties are never needed (and WorkerModule does not warn about them).
   */
  override checkEventDependencies(): EventDependencyError[] {
    return this.resolvesDependencies ? super.checkEventDependencies() : [];
  }

  /**
   * Records the event. A queued event goes through the real dispatch with a creator that stores
   * nothing, so it is rejected exactly as the real one would be (UnknownEventError,
   * UnserializablePayloadError) and is then not recorded. An event without a queue is recorded, not run.
   */
  override async dispatch(event: BaseEvent, options: DispatchOptions = {}): Promise<string | undefined> {
    const queueName = event.getQueueName();
    // Without the manager: the recorder's models join no transaction.
    const id = queueName ? await super.dispatch(event) : undefined;
    this.records.push({ event, options: { ...options }, id, queueName, eventName: event.getName() });
    return id;
  }

  /** Records each event of a dispatchMany(), after the same checks as the real one (all or none). */
  override async dispatchMany(events: BaseEvent[], options: DispatchOptions = {}): Promise<string[]> {
    const { manager: _manager, ...stored } = options;
    const ids = await super.dispatchMany(events, stored);
    events.forEach((event, index) =>
      this.records.push({
        event,
        options: { ...options },
        id: ids[index],
        queueName: event.getQueueName(),
        eventName: event.getName(),
      }),
    );
    return ids;
  }

  /** Every dispatch recorded so far, in order. */
  get dispatches(): readonly RecordedDispatch[] {
    return [...this.records];
  }

  /** The events of exactly this class (not subclasses) dispatched so far, in order. */
  dispatched<E extends BaseEvent>(eventClass: EventConstructor<E>): E[] {
    return this.recordsOf(eventClass).map((record) => record.event);
  }

  /** The recorded dispatches of exactly this class, with their options and ids. */
  dispatchesOf<E extends BaseEvent>(eventClass: EventConstructor<E>): RecordedDispatch<E>[] {
    return this.recordsOf(eventClass);
  }

  /**
   * Asserts that `eventClass` was dispatched with a payload matching `payloadMatcher` (a partial
   * payload, or a predicate; any payload when omitted): at least once, or exactly `times` times.
   * Returns the matching events. Throws DispatchAssertionError naming the class, the matcher and
   * everything that was dispatched.
   */
  expectDispatched<E extends BaseEvent>(
    eventClass: EventConstructor<E>,
    payloadMatcher?: PayloadMatcher<PayloadOf<E>>,
    times?: number,
  ): E[] {
    if (times !== undefined && (!Number.isInteger(times) || times < 0)) {
      throw new TypeError(`expectDispatched(): times must be an integer ≥ 0 (got ${String(times)})`);
    }
    const matching = this.matching(eventClass, payloadMatcher);
    const holds = times === undefined ? matching.length > 0 : matching.length === times;
    if (!holds) {
      const expected = times === undefined ? 'at least once' : timesText(times);
      throw new DispatchAssertionError(
        `Expected ${eventClass.name} to be dispatched ${expected}${withMatcher(payloadMatcher)}, ` +
          `but it was dispatched ${this.countText(eventClass, matching.length, payloadMatcher)}.\n` +
          this.describeDispatches(),
      );
    }
    return matching;
  }

  /**
   * Asserts that `eventClass` was not dispatched (with a payload matching `payloadMatcher`, when
   * given). Throws DispatchAssertionError naming the class, the matcher and everything that was dispatched.
   */
  expectNotDispatched<E extends BaseEvent>(
    eventClass: EventConstructor<E>,
    payloadMatcher?: PayloadMatcher<PayloadOf<E>>,
  ): void {
    const matching = this.matching(eventClass, payloadMatcher);
    if (matching.length > 0) {
      throw new DispatchAssertionError(
        `Expected ${eventClass.name} not to be dispatched${withMatcher(payloadMatcher)}, ` +
          `but it was dispatched ${this.countText(eventClass, matching.length, payloadMatcher)}.\n` +
          this.describeDispatches(),
      );
    }
  }

  /** Forgets every recorded dispatch; ids start again at "recorded-1". */
  clear(): void {
    this.records.length = 0;
    this.recordingCreator.reset();
  }

  private recordsOf<E extends BaseEvent>(eventClass: EventConstructor<E>): RecordedDispatch<E>[] {
    return this.records.filter((record): record is RecordedDispatch<E> => record.event.constructor === eventClass);
  }

  private matching<E extends BaseEvent>(
    eventClass: EventConstructor<E>,
    payloadMatcher: PayloadMatcher<PayloadOf<E>> | undefined,
  ): E[] {
    const events = this.dispatched(eventClass);
    if (payloadMatcher === undefined) return events;
    return events.filter((event) => matchesPayload(event.getPayload(), payloadMatcher));
  }

  /** "2 times", or "once with such a payload (3 times in all)" when a matcher narrowed the count. */
  private countText(eventClass: EventConstructor, matched: number, payloadMatcher: unknown): string {
    if (payloadMatcher === undefined) return timesText(matched);
    const all = this.recordsOf(eventClass).length;
    const inAll = all === matched ? '' : ` (${all} ${all === 1 ? 'time' : 'times'} in all)`;
    return `${timesText(matched)} with such a payload${inAll}`;
  }

  private describeDispatches(): string {
    if (this.records.length === 0) return 'Nothing was dispatched.';
    const lines = this.records.map(({ event, id, queueName, eventName }, index) => {
      const className = event.constructor.name;
      const name = eventName === className ? className : `${className} (event name "${eventName}")`;
      const where = queueName ? `on queue "${queueName}" as ${id}` : 'without a queue';
      return `  ${index + 1}. ${name} ${where}, payload ${describeValue(event.getPayload())}`;
    });
    return `Dispatched (${this.records.length}):\n${lines.join('\n')}`;
  }
}

function timesText(count: number): string {
  return count === 1 ? 'once' : `${count} times`;
}

function withMatcher(payloadMatcher: unknown): string {
  return payloadMatcher === undefined ? '' : ` with ${describeMatcher(payloadMatcher)}`;
}
