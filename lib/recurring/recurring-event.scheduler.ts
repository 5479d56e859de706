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
import { dialectFor } from '../storage/dialects/dialect-for.js';
import { TypeOrmWorkerModel } from '../storage/typeorm-worker.model.js';
import { dispatchRecurringSlot, insertRow } from '../storage/worker-statements.js';
import { workerTables } from '../storage/worker-tables.js';
import { ensureScheduleRow } from '../storage/schedule-rows.js';
import type { ResolvedWorkerConfig } from '../worker.config.js';
import { MAX_TIMER_MS, WORKER_CONFIG, WORKER_DATA_SOURCE } from '../worker.constants.js';
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

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: ResolvedWorkerConfig,
    @Inject(WORKER_DATA_SOURCE) private readonly dataSource: DataSource,
    private readonly eventService: EventService,
    private readonly lifecycle: WorkerLifecycle,
    private readonly startup: WorkerStartup,
  ) {
    this.logger = config.logger ?? new Logger(RecurringEventScheduler.name);
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
    this.logger.log(
      `Recurring events: ${[...this.schedules.values()].map((schedule) => `${schedule.name} (${schedule.cron})`).join(', ')}`,
    );
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
    if (!schedule)
      throw new WorkerError(
        `No recurring event schedule named ${JSON.stringify(name)} (known: ${[...this.schedules.keys()].join(', ') || 'none'})`,
      );
    if (!(slotAt instanceof Date) || Number.isNaN(slotAt.getTime())) {
      throw new InvalidWorkerOptionsError(
        'slotAt',
        `must be a valid Date (got ${slotAt instanceof Date ? 'Invalid Date' : JSON.stringify(slotAt)})`,
      );
    }
    // Only real slots, and none beyond the next one: a later one would suppress every slot before it.
    if (schedule.slots.after(new Date(slotAt.getTime() - 1)).getTime() !== slotAt.getTime()) {
      throw new InvalidWorkerOptionsError(
        'slotAt',
        `${slotAt.toISOString()} is not a slot of ${name} (${schedule.cron})`,
      );
    }
    if (slotAt.getTime() > schedule.slots.after(new Date()).getTime()) {
      throw new InvalidWorkerOptionsError('slotAt', `${slotAt.toISOString()} is later than the next slot of ${name}`);
    }
    await this.ensureSlotRow(name);
    const uniqueKey = `${name}@${slotAt.toISOString()}`;
    const event = new (schedule.eventClass as new (payload: TSerializableValues | null) => InstanceType<EventClass>)(
      schedule.payload,
    );
    const { model } = this.eventService.buildWorkerModel(event, schedule.queueName, { runAt: slotAt, uniqueKey });
    if (!(model instanceof TypeOrmWorkerModel))
      throw new WorkerError(
        'Recurring events need the TypeORM worker creator: a replaced creator cannot join the slot transaction',
      );
    const tables = workerTables(this.dataSource);
    const row = insertRow(tables.pending, model.databaseRow(), (column) => this.dataSource.driver.escape(column));
    const id = await dialectFor(this.dataSource).atomically(
      dispatchRecurringSlot(tables, { name, slotAt: slotAt.getTime(), now: Date.now() }, row, {
        queueName: schedule.queueName,
        uniqueKey,
      }),
    );
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
      throw new InvalidWorkerOptionsError(
        field('event'),
        `${eventClass.name} is not a registered event: decorate it with @QueueEvent() or list it in events`,
      );
    }
    const payload = options.payload ?? null;
    const event = new (eventClass as new (payload: TSerializableValues | null) => InstanceType<EventClass>)(payload);
    const queueName = event.getQueueName();
    if (!queueName)
      throw new InvalidWorkerOptionsError(
        field('event'),
        `${eventClass.name} has no queue: only queued events can recur`,
      );
    // Builds (and so checks) the row once now: an unserializable payload stops startup, not a slot.
    this.eventService.buildWorkerModel(event, queueName, { uniqueKey: 'startup-check' });
    const name = options.name ?? registered.name;
    if (name.length > MAX_SCHEDULE_NAME_LENGTH) {
      throw new InvalidWorkerOptionsError(
        field('name'),
        `must be given: the event's name is longer than ${MAX_SCHEDULE_NAME_LENGTH} characters`,
      );
    }
    if (this.schedules.has(name)) {
      throw new InvalidWorkerOptionsError(
        options.name === undefined ? where : field('name'),
        `schedule name ${JSON.stringify(name)} is taken by another recurring event: give each schedule of one event its own name`,
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
    return ensureScheduleRow(this.dataSource, name);
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
      if (id !== undefined) this.logger.debug?.(`Dispatched ${schedule.name} for ${slotAt.toISOString()} (row ${id})`);
    } catch (error) {
      this.logger.error(
        `Could not dispatch recurring event ${schedule.name} for ${slotAt.toISOString()}: ${describeError(error)}`,
      );
    } finally {
      this.inFlight.delete(dispatch);
    }
    try {
      this.arm(schedule, new Date(Math.max(Date.now(), slotAt.getTime())));
    } catch (error) {
      this.logger.error(
        `Recurring event ${schedule.name} stops: no slot follows ${slotAt.toISOString()}: ${describeError(error)}`,
      );
    }
  }
}
