/**
 * Recurring events on every database: @RecurringEvent() and the module's `recurring` option dispatch
 * once per cron slot across 3 app instances on one database, on real timers and when they race for
 * one slot; bad schedules stop startup.
 */
import { Injectable, type ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  BaseEvent,
  InvalidWorkerOptionsError,
  OnWorkerEvent,
  QueueEvent,
  RecurringEvent,
  RecurringEventScheduler,
  WorkerModule,
  type WorkerLifecycleEvent,
  type WorkerModuleOptions,
} from '../lib/index.js';
import { testDatabases } from './support/databases.js';
import {
  createPeerApp,
  createTestApp,
  pendingRows,
  runOncePass,
  sleep,
  type TestApp,
  waitFor,
} from './support/test-app.js';

const executions: string[] = [];

@QueueEvent('recurring-ticks')
@RecurringEvent('* * * * * *', { payload: { source: 'decorator' } })
class TickEvent extends BaseEvent<{ source: string }> {
  async execute(): Promise<void> {
    executions.push(this.getPayload().source);
  }
}

@QueueEvent('recurring-reports')
class ReportEvent extends BaseEvent<{ kind: string }> {
  async execute(): Promise<void> {
    executions.push(this.getPayload().kind);
  }
}

class UnqueuedEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

const dispatched: WorkerLifecycleEvent[] = [];

@Injectable()
class DispatchRecorder {
  @OnWorkerEvent('dispatched')
  record(event: WorkerLifecycleEvent): void {
    dispatched.push(event);
  }
}

const NIGHTLY = {
  event: ReportEvent,
  cron: '0 3 * * *',
  payload: { kind: 'nightly' },
  name: 'nightly-report',
  timeZone: 'UTC',
};

/** The next 03:00 UTC: the next slot of NIGHTLY. */
function nextNightlySlot(): Date {
  const now = new Date();
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 3);
  return new Date(today > now.getTime() ? today : today + 86_400_000);
}
const PARIS_MORNING = {
  event: ReportEvent,
  cron: '0 9 * * *',
  payload: { kind: 'morning' },
  name: 'paris-morning',
  timeZone: 'Europe/Paris',
};

describe.each(testDatabases())('recurring events ($name)', (database) => {
  const apps: TestApp[] = [];

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
    executions.length = 0;
  });

  /** 3 instances of one application on one database. */
  async function replicas(options: WorkerModuleOptions, metadata: ModuleMetadata = {}): Promise<TestApp[]> {
    const first = await createTestApp(options, metadata, database);
    apps.push(first);
    for (let n = 1; n < 3; n++) apps.push(await createPeerApp(first, options, database, metadata));
    return apps;
  }

  it('dispatches a slot from exactly one of 3 instances racing for it, and never again once it ran', async () => {
    const [first, ...others] = await replicas({ events: [TickEvent, ReportEvent], recurring: [NIGHTLY] });
    const slots = [1, 2, 3, 4].map((day) => new Date(Date.UTC(2026, 0, day, 3)));
    for (const slot of slots) {
      const ids = await Promise.all(
        apps.map((app) => app.app.get(RecurringEventScheduler).dispatchSlot('nightly-report', slot)),
      );
      expect(ids.filter((id) => id !== undefined)).toHaveLength(1);
      await first!.workers.runWorker(runOncePass('recurring-reports'));
      // The slot's row has run and is gone; a late replica still does not dispatch it again.
      expect(await others[1]!.app.get(RecurringEventScheduler).dispatchSlot('nightly-report', slot)).toBeUndefined();
    }
    expect(executions).toEqual(['nightly', 'nightly', 'nightly', 'nightly']);
    // An older slot than the last dispatched one is never dispatched.
    expect(
      await first!.app.get(RecurringEventScheduler).dispatchSlot('nightly-report', new Date(Date.UTC(2025, 11, 31, 3))),
    ).toBeUndefined();
  });

  it('stores the slot as a delayed row of the queue with its payload and the unique key name@slot', async () => {
    const [t] = await replicas({ events: [TickEvent, ReportEvent], recurring: [NIGHTLY] });
    const slot = nextNightlySlot();
    const id = await t!.app.get(RecurringEventScheduler).dispatchSlot('nightly-report', slot);
    expect(await pendingRows(t!.dataSource)).toEqual([
      expect.objectContaining({
        id: Number(id),
        queue_name: 'recurring-reports',
        event_name: 'ReportEvent',
        payload: JSON.stringify({ kind: 'nightly' }),
        available_at: slot.getTime(),
        unique_key: `nightly-report@${slot.toISOString()}`,
      }),
    ]);
    // Not due before its slot; cancellable by its key.
    expect(await t!.workers.runWorker(runOncePass('recurring-reports'))).toMatchObject({ processed: 0 });
    expect(
      await t!.workers.cancel({ queueName: 'recurring-reports', uniqueKey: `nightly-report@${slot.toISOString()}` }),
    ).toMatchObject({ id });
  });

  it('runs on real timers in 3 instances: every second of a 6-field schedule is dispatched once and runs once', async () => {
    const options: WorkerModuleOptions = {
      events: [TickEvent, ReportEvent],
      autoStart: true,
      queues: { 'recurring-ticks': { pollIntervalMs: 50 } },
    };
    dispatched.length = 0;
    const started = Date.now();
    // The recorder hook is in place before any timer starts (hooks are found at init, timers start at bootstrap).
    const running = await replicas(options, { providers: [DispatchRecorder] });
    await sleep(3300);
    // Timers stop here (as on shutdown); what they dispatched is then final.
    for (const app of running) await app.app.get(RecurringEventScheduler).beforeApplicationShutdown();
    const slots = dispatched.map((event) => event.attributes.uniqueKey);
    expect(new Set(slots).size).toBe(slots.length);
    expect(slots.length).toBeGreaterThanOrEqual(3);
    for (const key of slots) expect(key).toMatch(/^TickEvent@\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    const slotTimes = slots.map((key) => Date.parse(key!.slice('TickEvent@'.length))).sort();
    expect(slotTimes[0]).toBeGreaterThan(started);
    // Whole seconds apart (a slot missed while a loaded machine stalled past the next one is skipped, not doubled).
    slotTimes.slice(1).forEach((time, index) => {
      expect(time - slotTimes[index]!).toBeGreaterThanOrEqual(1000);
      expect((time - slotTimes[index]!) % 1000).toBe(0);
    });
    // Every dispatched slot runs exactly once on the pollers of the 3 instances.
    await waitFor(() => executions.length >= slots.length, 5000);
    await sleep(300);
    expect(executions).toHaveLength(slots.length);
    expect(executions.every((source) => source === 'decorator')).toBe(true);
    expect(await pendingRows(running[0]!.dataSource)).toEqual([]);
  }, 15_000);

  it('dispatches by hand only real slots no later than the next one', async () => {
    const [t] = await replicas({ events: [TickEvent, ReportEvent], recurring: [NIGHTLY] });
    const scheduler = t!.app.get(RecurringEventScheduler);
    await expect(scheduler.dispatchSlot('nightly-report', new Date('nonsense'))).rejects.toThrow(
      'Invalid nestjs-workers option "slotAt": must be a valid Date',
    );
    await expect(scheduler.dispatchSlot('nightly-report', new Date(Date.UTC(2026, 0, 1, 4)))).rejects.toThrow(
      'is not a slot of nightly-report (0 3 * * *)',
    );
    await expect(
      scheduler.dispatchSlot('nightly-report', new Date(nextNightlySlot().getTime() + 86_400_000)),
    ).rejects.toThrow('is later than the next slot');
    await expect(scheduler.dispatchSlot('weekly', nextNightlySlot())).rejects.toThrow(
      'No recurring event schedule named "weekly"',
    );
    expect(await pendingRows(t!.dataSource)).toEqual([]);
  });

  it('lists the schedules with the next slot read in their time zone', async () => {
    const [t] = await replicas({ events: [TickEvent, ReportEvent], recurring: [NIGHTLY, PARIS_MORNING] });
    const scheduler = t!.app.get(RecurringEventScheduler);
    expect(
      scheduler
        .list()
        .map(({ name, queueName, eventName, nextSlotAt }) => ({ name, queueName, eventName, nextSlotAt })),
    ).toEqual([
      { name: 'nightly-report', queueName: 'recurring-reports', eventName: 'ReportEvent', nextSlotAt: undefined },
      { name: 'paris-morning', queueName: 'recurring-reports', eventName: 'ReportEvent', nextSlotAt: undefined },
      { name: 'TickEvent', queueName: 'recurring-ticks', eventName: 'TickEvent', nextSlotAt: undefined },
    ]);
    for (const app of apps.splice(0)) await app.close();
    const [running] = await replicas({ events: [ReportEvent], recurring: [PARIS_MORNING], autoStart: true });
    const next = running!.app
      .get(RecurringEventScheduler)
      .list()
      .find((schedule) => schedule.name === 'paris-morning')!.nextSlotAt!;
    const inParis = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/Paris',
      hour: '2-digit',
      minute: '2-digit',
      hour12: false,
    }).format(next);
    expect(inParis).toBe('09:00');
    expect(next.getTime()).toBeGreaterThan(Date.now());
    expect(next.getTime() - Date.now()).toBeLessThanOrEqual(24 * 3_600_000);
  });
});

describe('recurring events: bad schedules', () => {
  async function boot(options: WorkerModuleOptions): Promise<void> {
    const moduleRef = await Test.createTestingModule({
      imports: [WorkerModule.forRoot({ autoStart: false, database: { database: ':memory:' }, ...options })],
    }).compile();
    try {
      await moduleRef.init();
    } finally {
      await moduleRef.close();
    }
  }

  it.each([
    [
      'an invalid cron expression',
      'recurring[0].cron',
      { event: ReportEvent, cron: 'every monday' },
      'is not a valid cron expression',
    ],
    ['an out-of-range field', 'recurring[0].cron', { event: ReportEvent, cron: '61 * * * *' }, 'out of range'],
    [
      'a cron that is not a string',
      'recurring[0].cron',
      { event: ReportEvent, cron: 5 },
      'must be a cron expression string',
    ],
    [
      'an unknown time zone',
      'recurring[0].timeZone',
      { event: ReportEvent, cron: '0 * * * *', timeZone: 'Mars/Olympus' },
      'is not a known time zone',
    ],
    [
      'an unknown option',
      'recurring[0].every',
      { event: ReportEvent, cron: '0 * * * *', every: 'hour' },
      'is not an option',
    ],
    ['a missing event', 'recurring[0].event', { cron: '0 * * * *' }, 'must be a queued event class'],
    ['a cron that never fires', 'recurring[0].cron', { event: ReportEvent, cron: '0 0 31 4 *' }, 'never fires'],
    [
      'a name too long for its unique keys',
      'recurring[0].name',
      { event: ReportEvent, cron: '0 * * * *', name: 'n'.repeat(201) },
      'must be at most 200 characters',
    ],
  ])('stops startup on %s, naming %s', async (_label, field, definition, problem) => {
    const attempt = boot({ events: [ReportEvent], recurring: [definition as never] });
    await expect(attempt).rejects.toThrow(InvalidWorkerOptionsError);
    await expect(boot({ events: [ReportEvent], recurring: [definition as never] })).rejects.toThrow(
      `Invalid nestjs-workers option "${field}": `,
    );
    await expect(boot({ events: [ReportEvent], recurring: [definition as never] })).rejects.toThrow(problem);
  });

  it('stops startup on an event that is not registered, has no queue, or a schedule name used twice', async () => {
    await expect(
      boot({ events: [ReportEvent], recurring: [{ event: UnqueuedEvent, cron: '0 * * * *' }] }),
    ).rejects.toThrow('Invalid nestjs-workers option "recurring[0].event": UnqueuedEvent is not a registered event');
    await expect(
      boot({ events: [ReportEvent, UnqueuedEvent], recurring: [{ event: UnqueuedEvent, cron: '0 * * * *' }] }),
    ).rejects.toThrow('UnqueuedEvent has no queue: only queued events can recur');
    await expect(
      boot({ events: [ReportEvent], recurring: [NIGHTLY, { ...NIGHTLY, cron: '0 4 * * *' }] }),
    ).rejects.toThrow('Invalid nestjs-workers option "recurring[1].name": schedule name "nightly-report" is taken');
    await expect(boot({ recurring: { event: ReportEvent } as never })).rejects.toThrow(
      'Invalid nestjs-workers option "recurring": must be an array',
    );
  });

  it('refuses a bad @RecurringEvent() when the class is defined', () => {
    expect(() => {
      @QueueEvent('recurring-bad')
      @RecurringEvent('*/5 * * *  * * *')
      class TooManyFieldsEvent extends BaseEvent<null> {
        async execute(): Promise<void> {}
      }
      return TooManyFieldsEvent;
    }).toThrow(
      'Invalid nestjs-workers option "@RecurringEvent() on TooManyFieldsEvent: cron": is not a valid cron expression',
    );
    expect(() => {
      @QueueEvent('recurring-bad')
      @RecurringEvent('0 * * * *', { timeZone: 'Nowhere/Special' })
      class NowhereEvent extends BaseEvent<null> {
        async execute(): Promise<void> {}
      }
      return NowhereEvent;
    }).toThrow(
      'Invalid nestjs-workers option "@RecurringEvent() on NowhereEvent: options.timeZone": is not a known time zone',
    );
  });
});
