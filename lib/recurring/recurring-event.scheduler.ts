import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleInit,
} from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { describeError } from '../errors/describe-error.js';
import { InvalidWorkerOptionsError, WorkerError } from '../errors/worker.error.js';
import type { EventClass } from '../interfaces/base-event.interface.js';
import { EventService } from '../dispatch/event.service.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { RecurringEventOptions, RecurringSchedule } from '../interfaces/recurring-event.interface.js';
import type { TSerializableValues } from '../interfaces/worker-attributes.interface.js';
import { WorkerLifecycle } from '../lifecycle/worker-lifecycle.js';
import { rowStoreOfModel } from '../storage/model-row-store.js';
import { RecurringSlotStore } from '../storage/recurring-slots.js';
import { recurringMessages } from '../worker.messages.js';
import type { ResolvedWorkerConfig } from '../worker.config.js';
import { WORKER_CONFIG, WORKER_DATA_SOURCE } from '../worker.constants.js';
import { MAX_TIMER_MS } from '../worker.defaults.js';
import { getRecurringEventMetadata } from '../worker-metadata.accessor.js';
import { WorkerStartup } from '../worker-startup.js';
import { CronSlots, MAX_SCHEDULE_NAME_LENGTH } from './cron-slots.js';

interface PreparedSchedule extends RecurringSchedule {
  eventClass: EventClass;
  payload: TSerializableValues | null;
  slots: CronSlots;
}

/**
 * Dispatches the recurring events (@RecurringEvent() classes and the module's `recurring` option) on
 * their cron slots. Every replica runs the same timers; the database decides which one dispatches
 * each slot (see dispatchSlot), so a slot runs once however many replicas there are.
 */
@Injectable()
export class RecurringEventScheduler implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger: ILoggerService;
  private readonly schedules = new Map<string, PreparedSchedule>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<unknown>>();
  private running = false;
  private readonly slotStore: RecurringSlotStore;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: ResolvedWorkerConfig,
    @Inject(WORKER_DATA_SOURCE) dataSource: DataSource,
    private readonly eventService: EventService,
    private readonly lifecycle: WorkerLifecycle,
    private readonly startup: WorkerStartup,
  ) {
    this.logger = config.logger ?? new Logger(RecurringEventScheduler.name);
    this.slotStore = new RecurringSlotStore(dataSource);
  }

  /** Collects and checks every schedule, so a bad one stops startup (and closes what the module opened). */
  onModuleInit(): Promise<void> {
    return this.startup.step(() => this.collect());
  }

  private collect(): void {
    this.config.recurring.forEach(({ event, cron, ...options }, index) =>
      this.add(`recurring[${index}]`, (key) => `recurring[${index}].${key}`, event, cron, options),
    );
    for (const { eventClass } of this.eventService.getRegisteredEvents()) {
      for (const { cron, ...options } of getRecurringEventMetadata(eventClass)) {
        const where = `@RecurringEvent() on ${eventClass.name}`;
        this.add(where, (key) => `${where}: options.${key}`, eventClass, cron, options);
      }
    }
  }

  onApplicationBootstrap(): Promise<void> {
    return this.startup.step(() => this.start());
  }

  private async start(): Promise<void> {
    if (!this.config.autoStart || this.schedules.size === 0) return;
    for (const name of this.schedules.keys()) await this.ensureSlotRow(name);
    const now = new Date();
    // Every first slot is computed before any timer starts: a failure leaves nothing running.
    const firstSlots = [...this.schedules.values()].map((schedule) => [schedule, schedule.slots.after(now)] as const);
    this.running = true;
    this.startup.opened(() => this.beforeApplicationShutdown());
    for (const [schedule, slotAt] of firstSlots) {
      schedule.nextSlotAt = slotAt;
      this.waitFor(schedule, slotAt);
    }
    this.logger.log(recurringMessages.started([...this.schedules.values()]));
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.running = false;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    // A dispatch under way finishes before the DataSource closes.
    await Promise.allSettled([...this.inFlight]);
  }

  /** The schedules of this application, with the next slot this process waits for while running. */
  list(): RecurringSchedule[] {
    return [...this.schedules.values()].map(({ name, cron, timeZone, eventName, queueName, nextSlotAt }) => ({
      name,
      cron,
      timeZone,
      eventName,
      queueName,
      nextSlotAt,
    }));
  }

  /**
   * Dispatches slot `slotAt` of schedule `name` unless it (or a later slot) was dispatched already,
   * by any replica: the schedule's last slot moves forward and the row (due at the slot, unique key
   * `name@slot`) is inserted in one transaction. Resolves to the row id when this call dispatched it,
   * to undefined when another had. The timers call it; it is public for tests and manual catch-up.
   */
  async dispatchSlot(name: string, slotAt: Date): Promise<string | undefined> {
    const schedule = this.schedules.get(name);
    if (!schedule) throw new WorkerError(recurringMessages.unknownSchedule(name, [...this.schedules.keys()]));
    if (!(slotAt instanceof Date) || Number.isNaN(slotAt.getTime())) {
      throw new InvalidWorkerOptionsError('slotAt', recurringMessages.invalidDate(slotAt));
    }
    // Only real slots, and none beyond the next one: a later one would suppress every slot before it.
    if (schedule.slots.after(new Date(slotAt.getTime() - 1)).getTime() !== slotAt.getTime()) {
      throw new InvalidWorkerOptionsError('slotAt', recurringMessages.notASlot(slotAt, name, schedule.cron));
    }
    if (slotAt.getTime() > schedule.slots.after(new Date()).getTime()) {
      throw new InvalidWorkerOptionsError('slotAt', recurringMessages.beyondNextSlot(slotAt, name));
    }
    await this.ensureSlotRow(name);
    const uniqueKey = `${name}@${slotAt.toISOString()}`;
    const event = new (schedule.eventClass as new (payload: TSerializableValues | null) => InstanceType<EventClass>)(
      schedule.payload,
    );
    const { model } = this.eventService.buildWorkerModel(event, schedule.queueName, { runAt: slotAt, uniqueKey });
    if (!rowStoreOfModel(model)) throw new WorkerError(recurringMessages.needsRowStore);
    const id = await this.slotStore.dispatch({ name, slotAt }, model);
    const attributes = model.getWorkerData();
    if (id !== undefined && attributes) {
      await this.lifecycle.emit({
        name: 'dispatched',
        queueName: schedule.queueName,
        eventName: schedule.eventName,
        attributes: { ...attributes, id },
        event,
      });
    }
    return id;
  }

  private add(
    where: string,
    field: (key: keyof RecurringEventOptions | 'event') => string,
    eventClass: EventClass,
    cron: string,
    options: RecurringEventOptions,
  ): void {
    const registered = this.eventService.getRegisteredEvents().find((candidate) => candidate.eventClass === eventClass);
    if (!registered) {
      throw new InvalidWorkerOptionsError(field('event'), recurringMessages.notRegistered(eventClass.name));
    }
    const payload = options.payload ?? null;
    const event = new (eventClass as new (payload: TSerializableValues | null) => InstanceType<EventClass>)(payload);
    const queueName = event.getQueueName();
    if (!queueName) throw new InvalidWorkerOptionsError(field('event'), recurringMessages.noQueue(eventClass.name));
    // Builds (and so checks) the row once now: an unserializable payload stops startup, not a slot.
    this.eventService.buildWorkerModel(event, queueName, { uniqueKey: 'startup-check' });
    const name = options.name ?? registered.name;
    if (name.length > MAX_SCHEDULE_NAME_LENGTH) {
      throw new InvalidWorkerOptionsError(field('name'), recurringMessages.nameTooLong(MAX_SCHEDULE_NAME_LENGTH));
    }
    if (this.schedules.has(name)) {
      throw new InvalidWorkerOptionsError(
        options.name === undefined ? where : field('name'),
        recurringMessages.nameTaken(name),
      );
    }
    this.schedules.set(name, {
      name,
      cron,
      timeZone: options.timeZone,
      eventName: registered.name,
      queueName,
      eventClass,
      payload,
      slots: new CronSlots(cron, options.timeZone),
    });
  }

  /** The schedule's row in the slot table; two replicas creating it at once is fine, one insert wins. */
  private ensureSlotRow(name: string): Promise<void> {
    return this.slotStore.ensureSchedule(name);
  }

  /** Waits for the first slot after `after`; slots missed while this process was busy or late are skipped. */
  private arm(schedule: PreparedSchedule, after: Date): void {
    const slotAt = schedule.slots.after(after);
    schedule.nextSlotAt = slotAt;
    this.waitFor(schedule, slotAt);
  }

  private waitFor(schedule: PreparedSchedule, slotAt: Date): void {
    if (!this.running) return;
    const delay = slotAt.getTime() - Date.now();
    const timer = setTimeout(
      () => {
        if (delay > MAX_TIMER_MS || Date.now() < slotAt.getTime()) this.waitFor(schedule, slotAt);
        else void this.fire(schedule, slotAt);
      },
      Math.min(Math.max(delay, 0), MAX_TIMER_MS),
    );
    this.timers.set(schedule.name, timer);
  }

  private async fire(schedule: PreparedSchedule, slotAt: Date): Promise<void> {
    if (!this.running) return;
    const dispatch = this.dispatchSlot(schedule.name, slotAt);
    this.inFlight.add(dispatch);
    try {
      const id = await dispatch;
      if (id !== undefined) this.logger.debug?.(recurringMessages.dispatched(schedule.name, slotAt, id));
    } catch (error) {
      this.logger.error(recurringMessages.dispatchFailed(schedule.name, slotAt, describeError(error)));
    } finally {
      this.inFlight.delete(dispatch);
    }
    try {
      this.arm(schedule, new Date(Math.max(Date.now(), slotAt.getTime())));
    } catch (error) {
      this.logger.error(recurringMessages.stops(schedule.name, slotAt, describeError(error)));
    }
  }
}
