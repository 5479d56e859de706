/**
 * WorkerModule on SQLite: forRoot and forRootAsync (useFactory, useClass, useExisting), validated
 * options, per-queue options, @QueueEvent() collection, polling through @nestjs/schedule, replaced
 * providers, graceful close, and events using Nest providers.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, Module } from '@nestjs/common';
import { Cron, ScheduleModule, SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import type { DataSource } from 'typeorm';
import {
  BaseEvent,
  DuplicateWorkerModuleError,
  EventService,
  InvalidWorkerOptionsError,
  QueueEvent,
  TypeOrmWorkerCreator,
  WORKER_DATA_SOURCE,
  WorkerModule,
  type WorkerModuleOptions,
  type WorkerOptionsFactory,
  WorkerService,
  type IWorkerAttributes,
  type IWorkerModel,
} from '../lib/index.js';
import { createTestApp, pendingRows, RecordingLogger, sleep, tempDatabase, waitFor } from './support/test-app.js';

@Injectable()
class MailService {
  readonly sent: string[] = [];
  async send(to: string, message: string): Promise<void> {
    this.sent.push(`${to}: ${message}`);
  }
}

@QueueEvent('mail-queue')
class WelcomeMailEvent extends BaseEvent<{ to: string }> {
  @Inject(MailService) private readonly mail!: MailService;
  async execute(): Promise<void> {
    await this.mail.send(this.getPayload().to, 'Welcome!');
  }
}

const slowRuns = { active: 0, maxActive: 0, finished: 0 };

@QueueEvent('slow-queue')
class SlowEvent extends BaseEvent<{ ms: number }> {
  async execute(): Promise<void> {
    slowRuns.active++;
    slowRuns.maxActive = Math.max(slowRuns.maxActive, slowRuns.active);
    await sleep(this.getPayload().ms);
    slowRuns.active--;
    slowRuns.finished++;
  }
}

/** Listed in `events: [...]` only; its queue comes from getQueueName(). */
class ListedEvent extends BaseEvent<{ n: number }> {
  static seen: number[] = [];
  async execute(): Promise<void> {
    ListedEvent.seen.push(this.getPayload().n);
  }
  override getQueueName(): string {
    return 'listed-queue';
  }
}

@QueueEvent('flaky-queue')
class FlakyEvent extends BaseEvent<null> {
  static attempts = 0;
  async execute(): Promise<void> {
    FlakyEvent.attempts++;
    throw new Error('flaky');
  }
}

@Module({ providers: [MailService], exports: [MailService] })
class MailModule {}

const settings = { retries: 7 };
const SETTINGS = 'SETTINGS';
@Module({ providers: [{ provide: SETTINGS, useValue: settings }], exports: [SETTINGS] })
class SettingsModule {}

const openApps: { close(): Promise<void> }[] = [];
async function track<T extends { close(): Promise<void> }>(app: Promise<T>): Promise<T> {
  const opened = await app;
  openApps.push(opened);
  return opened;
}
afterEach(async () => {
  for (const app of openApps.splice(0)) await app.close().catch(() => undefined);
});

describe('WorkerModule.forRoot', () => {
  it('works out of the box with no options: a WAL-mode SQLite file named nestjs-workers.sqlite in the working directory', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-cwd-'));
    const previous = process.cwd();
    process.chdir(dir);
    try {
      const moduleRef = await Test.createTestingModule({ imports: [WorkerModule.forRoot()] }).compile();
      const app = await moduleRef.init();
      const dataSource = app.get<DataSource>(WORKER_DATA_SOURCE);
      expect(existsSync(join(dir, 'nestjs-workers.sqlite'))).toBe(true);
      expect(await dataSource.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
      expect(await dataSource.query('PRAGMA busy_timeout')).toEqual([{ timeout: 5000 }]);
      expect(app.get(WorkerService)).toBeInstanceOf(WorkerService);
      expect(app.get(EventService)).toBeInstanceOf(EventService);
      await app.close();
    } finally {
      process.chdir(previous);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lets an event use Nest providers through @Inject() properties when it executes', async () => {
    const t = await track(createTestApp({}, { imports: [MailModule] }));
    await t.events.dispatch(new WelcomeMailEvent({ to: 'ada@example.com' }));
    const result = await t.workers.runWorker({
      queueName: 'mail-queue',
      retries: 1,
      runAfterSeconds: 0,
      runOnce: true,
    });
    expect(result.processed).toBe(1);
    expect(t.app.get(MailService).sent).toEqual(['ada@example.com: Welcome!']);
    await t.close();
  });

  it('registers classes listed in `events` (no decorator, queue from getQueueName()) and polls their queue', async () => {
    const t = await track(
      createTestApp(
        { events: [ListedEvent], autoStart: true, defaults: { pollIntervalMs: 20 } },
        { imports: [ScheduleModule.forRoot()] },
      ),
    );
    await t.events.dispatch(new ListedEvent({ n: 5 }));
    await waitFor(() => ListedEvent.seen.length === 1);
    expect(ListedEvent.seen).toEqual([5]);
    expect(t.app.get(SchedulerRegistry).getIntervals()).toEqual(
      expect.arrayContaining(['nestjs-workers:listed-queue', 'nestjs-workers:mail-queue', 'nestjs-workers:slow-queue']),
    );
    await t.close();
  });

  it("polls at bootstrap through the app's SchedulerRegistry, never overlaps a queue with itself, and drains on app.close()", async () => {
    slowRuns.active = 0;
    slowRuns.maxActive = 0;
    slowRuns.finished = 0;
    const t = await track(
      createTestApp(
        { autoStart: true, queues: { 'slow-queue': { pollIntervalMs: 10, concurrency: 1 } } },
        { imports: [ScheduleModule.forRoot()] },
      ),
    );
    const registry = t.app.get(SchedulerRegistry);
    expect(registry.getIntervals()).toContain('nestjs-workers:slow-queue');
    for (let i = 0; i < 3; i++) await t.events.dispatch(new SlowEvent({ ms: 80 }));
    await waitFor(() => slowRuns.finished >= 1);
    expect(slowRuns.maxActive).toBe(1);

    await t.app.close();
    // close() waited for the event that was running; nothing is left half-done or scheduled.
    expect(slowRuns.active).toBe(0);
    expect(registry.getIntervals()).toEqual([]);
    expect(slowRuns.finished).toBeGreaterThanOrEqual(1);
    expect(slowRuns.maxActive).toBe(1);
  });

  it('lets two WorkerModules of one app poll the same queue name under distinct interval names, all cleared on close', async () => {
    const [first, second] = [tempDatabase(), tempDatabase()];
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [
          ScheduleModule.forRoot(),
          WorkerModule.forRoot({ isGlobal: false, database: { database: first.file }, queues: { shared: {} } }),
          WorkerModule.forRoot({ isGlobal: false, database: { database: second.file }, queues: { shared: {} } }),
        ],
      }).compile();
      // Tracked before init(), so a bootstrap that throws half-way still gets its intervals closed.
      const app = await track(Promise.resolve(moduleRef));
      await app.init();
      const registry = app.get(SchedulerRegistry);
      const ours = registry.getIntervals().filter((name) => name.startsWith('nestjs-workers:shared'));
      expect(ours.sort()).toEqual(['nestjs-workers:shared', 'nestjs-workers:shared#2']);
      await app.close();
      expect(registry.getIntervals()).toEqual([]);
    } finally {
      first.cleanup();
      second.cleanup();
    }
  });

  it('runs a queue with its configured concurrency', async () => {
    slowRuns.active = 0;
    slowRuns.maxActive = 0;
    slowRuns.finished = 0;
    const t = await track(createTestApp({ queues: { 'slow-queue': { concurrency: 3 } } }));
    for (let i = 0; i < 6; i++) await t.events.dispatch(new SlowEvent({ ms: 50 }));
    const result = await t.workers.runWorker({
      queueName: 'slow-queue',
      retries: 1,
      runAfterSeconds: 0,
      runOnce: true,
    });
    expect(result.processed).toBe(6);
    expect(slowRuns.maxActive).toBe(3);
    await t.close();
  });

  it("polls without ScheduleModule imported by the app, and leaves the app's own @Cron() jobs registered once when it is", async () => {
    const withoutSchedule = await track(
      createTestApp({ events: [ListedEvent], autoStart: true, defaults: { pollIntervalMs: 20 } }),
    );
    ListedEvent.seen.length = 0;
    await withoutSchedule.events.dispatch(new ListedEvent({ n: 11 }));
    await waitFor(() => ListedEvent.seen.length === 1);
    await withoutSchedule.close();

    @Injectable()
    class Reports {
      @Cron('0 0 * * *', { name: 'nightly-report' })
      nightly(): void {}
    }
    const withSchedule = await track(
      createTestApp({ autoStart: true }, { imports: [ScheduleModule.forRoot()], providers: [Reports] }),
    );
    const registries = withSchedule.app.get(SchedulerRegistry, { strict: false, each: true });
    expect(registries.map((registry) => registry.doesExist('cron', 'nightly-report'))).toEqual([true]);
    expect(registries[0]!.getIntervals()).toContain('nestjs-workers:mail-queue');
  });

  it('reports health for every polled queue, empty ones included', async () => {
    const t = await track(createTestApp({ queues: { 'configured-only': {} }, events: [ListedEvent] }));
    await t.events.dispatch(new ListedEvent({ n: 1 }));
    const empty = (queueName: string) => ({ queueName, active: 0, failed: 0, total: 0 });
    expect(await t.workers.getHealth()).toEqual([
      empty('configured-only'),
      empty('flaky-queue'),
      { queueName: 'listed-queue', active: 1, failed: 0, total: 1 },
      empty('mail-queue'),
      empty('slow-queue'),
    ]);
  });

  it('does not poll when autoStart is false', async () => {
    const t = await track(
      createTestApp({ autoStart: false, events: [ListedEvent] }, { imports: [ScheduleModule.forRoot()] }),
    );
    ListedEvent.seen.length = 0;
    await t.events.dispatch(new ListedEvent({ n: 9 }));
    await sleep(1200);
    expect(ListedEvent.seen).toEqual([]);
    expect(await pendingRows(t.dataSource)).toHaveLength(1);
    expect(t.app.get(SchedulerRegistry).getIntervals()).toEqual([]);
    await t.close();
  });

  it('uses the per-queue retries and runAfterSeconds of the module config when it polls', async () => {
    FlakyEvent.attempts = 0;
    const t = await track(
      createTestApp({
        autoStart: true,
        queues: { 'flaky-queue': { retries: 2, runAfterSeconds: 0, pollIntervalMs: 20 } },
      }),
    );
    await t.events.dispatch(new FlakyEvent(null));
    await waitFor(async () => (await t.dataSource.query('SELECT COUNT(*) AS n FROM nestjs_failed_workers'))[0].n === 1);
    expect(FlakyEvent.attempts).toBe(2);
    const [pendingCount] = await t.dataSource.query('SELECT COUNT(*) AS n FROM nestjs_workers');
    expect(pendingCount.n).toBe(0);
    await t.close();
  });

  it('lets the creator be replaced by a provider (useFactory with inject)', async () => {
    const created: string[] = [];
    class CountingCreator extends TypeOrmWorkerCreator {
      override createWorkerModel(data: IWorkerAttributes): IWorkerModel {
        created.push(data.eventName);
        return super.createWorkerModel(data);
      }
    }
    const database = tempDatabase();
    const moduleRef = await Test.createTestingModule({
      imports: [
        WorkerModule.forRoot({
          autoStart: false,
          database: { database: database.file },
          workerCreator: {
            useFactory: (dataSource: DataSource) => new CountingCreator(dataSource),
            inject: [WORKER_DATA_SOURCE],
          },
        }),
        MailModule,
      ],
    }).compile();
    const app = await moduleRef.init();
    await app.get(EventService).dispatch(new WelcomeMailEvent({ to: 'x@example.com' }));
    expect(created).toEqual(['WelcomeMailEvent']);
    await app.close();
    database.cleanup();
  });
});

describe('several WorkerModules in one application', () => {
  it('refuses a second global instance at startup, before either opens its database', async () => {
    const [first, second] = [tempDatabase(), tempDatabase()];
    try {
      const compiling = Test.createTestingModule({
        imports: [
          WorkerModule.forRoot({ database: { database: first.file } }),
          WorkerModule.forRootAsync({ useFactory: () => ({ database: { database: second.file } }) }),
        ],
      }).compile();
      await expect(compiling).rejects.toBeInstanceOf(DuplicateWorkerModuleError);
      await expect(compiling).rejects.toThrow(
        'WorkerModule is imported 2 times as a global module in one application: only one instance may be global',
      );
      expect([existsSync(first.file), existsSync(second.file)]).toEqual([false, false]);
    } finally {
      first.cleanup();
      second.cleanup();
    }
  });

  it("gives each importing module its own non-global instance (beside the app's global one) with its own database", async () => {
    const [global, billing, reports] = [tempDatabase(), tempDatabase(), tempDatabase()];
    @Injectable()
    class Dispatcher {
      constructor(
        readonly events: EventService,
        @Inject(WORKER_DATA_SOURCE) readonly dataSource: DataSource,
      ) {}
    }
    @Injectable()
    class AppDispatcher extends Dispatcher {}
    const feature = (file: string) => {
      @Module({
        imports: [WorkerModule.forRoot({ isGlobal: false, autoStart: false, database: { database: file } })],
        providers: [Dispatcher],
        exports: [Dispatcher],
      })
      class FeatureModule {}
      return FeatureModule;
    };
    const [BillingModule, ReportsModule] = [feature(billing.file), feature(reports.file)];
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [
          WorkerModule.forRoot({ autoStart: false, database: { database: global.file } }),
          BillingModule,
          ReportsModule,
        ],
        providers: [AppDispatcher],
      }).compile();
      const app = await track(moduleRef.init());
      const [root, inBilling, inReports] = [
        app.get(AppDispatcher),
        app.select(BillingModule).get(Dispatcher, { strict: true }),
        app.select(ReportsModule).get(Dispatcher, { strict: true }),
      ];
      expect(new Set([root.events, inBilling.events, inReports.events]).size).toBe(3);
      expect([inBilling.dataSource, inReports.dataSource]).not.toContain(root.dataSource);
      await inBilling.events.dispatch(new WelcomeMailEvent({ to: 'billing@example.com' }));
      expect(
        await Promise.all([root, inBilling, inReports].map(async ({ dataSource }) => pendingRows(dataSource))),
      ).toEqual([[], [expect.objectContaining({ event_name: 'WelcomeMailEvent' })], []]);
      await app.close();
    } finally {
      for (const database of [global, billing, reports]) database.cleanup();
    }
  });

  it('shares one instance between the modules that import the same forRoot() value', async () => {
    const database = tempDatabase();
    const workers = WorkerModule.forRoot({ isGlobal: false, database: { database: database.file }, queues: { q: {} } });
    @Injectable()
    class Consumer {
      constructor(readonly workerService: WorkerService) {}
    }
    @Module({ imports: [workers], providers: [Consumer], exports: [Consumer] })
    class FirstModule {}
    @Module({ imports: [workers], providers: [Consumer], exports: [Consumer] })
    class SecondModule {}
    try {
      const moduleRef = await Test.createTestingModule({
        imports: [ScheduleModule.forRoot(), FirstModule, SecondModule],
      }).compile();
      const app = await track(moduleRef.init());
      expect(app.select(FirstModule).get(Consumer, { strict: true }).workerService).toBe(
        app.select(SecondModule).get(Consumer, { strict: true }).workerService,
      );
      // One poller per queue: the queue is not polled a second time under "nestjs-workers:q#2".
      const intervals = app.get(SchedulerRegistry).getIntervals();
      expect(intervals).toContain('nestjs-workers:q');
      expect(intervals.filter((name) => name.includes('#'))).toEqual([]);
      await app.close();
    } finally {
      database.cleanup();
    }
  });
});

describe('WorkerModule.forRootAsync', () => {
  async function boot(module: ReturnType<typeof WorkerModule.forRootAsync>) {
    const moduleRef = await Test.createTestingModule({ imports: [module, MailModule] }).compile();
    return moduleRef.init();
  }

  it('takes options from useFactory with inject and imports', async () => {
    const database = tempDatabase();
    const app = await boot(
      WorkerModule.forRootAsync({
        imports: [SettingsModule],
        inject: [SETTINGS],
        useFactory: (injected: typeof settings): WorkerModuleOptions => ({
          autoStart: false,
          database: { database: database.file },
          defaults: { retries: injected.retries },
        }),
      }),
    );
    const id = await app.get(EventService).dispatch(new WelcomeMailEvent({ to: 'a@example.com' }));
    const [row] = await app
      .get<DataSource>(WORKER_DATA_SOURCE)
      .query('SELECT retries FROM nestjs_workers WHERE id = ?', [id]);
    expect(row.retries).toBe(7);
    await app.close();
    database.cleanup();
  });

  it('takes options from useClass and from useExisting', async () => {
    const database = tempDatabase();
    const logger = new RecordingLogger();
    @Injectable()
    class WorkerConfigService implements WorkerOptionsFactory {
      createWorkerOptions(): WorkerModuleOptions {
        return { autoStart: false, database: { database: database.file }, logger };
      }
    }
    const viaClass = await boot(WorkerModule.forRootAsync({ useClass: WorkerConfigService }));
    await viaClass.get(EventService).dispatch(new WelcomeMailEvent({ to: 'b@example.com' }));
    await viaClass
      .get(WorkerService)
      .runWorker({ queueName: 'mail-queue', retries: 1, runAfterSeconds: 0, runOnce: true });
    expect(logger.messages('log')).toContain('Queued items: 1');
    await viaClass.close();

    @Module({ providers: [WorkerConfigService], exports: [WorkerConfigService] })
    class WorkerConfigModule {}
    const viaExisting = await boot(
      WorkerModule.forRootAsync({ imports: [WorkerConfigModule], useExisting: WorkerConfigService }),
    );
    expect(await viaExisting.get(WorkerService).getHealth(['mail-queue'])).toEqual([
      { queueName: 'mail-queue', active: 0, failed: 0, total: 0 },
    ]);
    await viaExisting.close();
    database.cleanup();
  });

  it('stops startup with an error naming the invalid option', async () => {
    const compile = (module: ReturnType<typeof WorkerModule.forRootAsync>) =>
      Test.createTestingModule({ imports: [module] }).compile();
    await expect(
      compile(WorkerModule.forRootAsync({ useFactory: () => ({ queues: { 'email-queue': { retries: 0 } } }) })),
    ).rejects.toThrow('Invalid nestjs-workers option "queues["email-queue"].retries": must be an integer ≥ 1 (got 0)');
    await expect(
      compile(WorkerModule.forRootAsync({ useFactory: () => ({ leaseSeconds: -5 }) })),
    ).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
  });
});
