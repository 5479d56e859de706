/**
 * The larascript-events API with its names and meaning, on SQLite and on a getWorkers()-only
 * repository of one's own: the "Configure Dependencies" wiring outside Nest (new WorkerService() and
 * its setters), BaseEvent, IWorkerModel, IWorkerCreator, IWorkerRepository and the health check.
 */
import { DataSource } from 'typeorm';
import {
  BaseEvent,
  EventService,
  type IWorkerAttributes,
  type IWorkerCreator,
  type IWorkerModel,
  type IWorkerRepository,
  QueueEvent,
  type TEventWorkerOptions,
  TypeOrmWorkerCreator,
  TypeOrmWorkerRepository,
  WorkerService,
  workerEntitySchemas,
} from '../lib/index.js';
import { QUEUED_ITEMS_COUNT_LIMIT } from '../lib/worker.defaults.js';
import { failedRows, pendingRows, RecordingLogger, tempDatabase } from './support/test-app.js';

const sentEmails: string[] = [];

@QueueEvent('email-queue')
class EmailNotificationEvent extends BaseEvent<{ userId: string; message: string }> {
  async execute(): Promise<void> {
    sentEmails.push(`${this.getPayload().userId}: ${this.getPayload().message}`);
  }
}

/** The seed's style: no decorator, the queue comes from an overridden getQueueName(). */
class SeedStyleEvent extends BaseEvent<{ value: number }> {
  static seen: number[] = [];
  async execute(): Promise<void> {
    SeedStyleEvent.seen.push(this.getPayload().value);
  }
  override getQueueName(): string {
    return 'seed-queue';
  }
}

/** No queue at all: the "sync driver", run at dispatch. */
class ImmediateEvent extends BaseEvent<{ note: string }> {
  static seen: string[] = [];
  async execute(): Promise<void> {
    ImmediateEvent.seen.push(this.getPayload().note);
  }
}

async function openDataSource(file: string): Promise<DataSource> {
  return new DataSource({
    type: 'better-sqlite3',
    database: file,
    entities: workerEntitySchemas('better-sqlite3'),
    synchronize: true,
  }).initialize();
}

describe('seed API outside Nest', () => {
  let dataSource: DataSource;
  let cleanup: () => void;

  beforeEach(async () => {
    const database = tempDatabase();
    cleanup = database.cleanup;
    dataSource = await openDataSource(database.file);
    sentEmails.length = 0;
  });

  afterEach(async () => {
    await dataSource.destroy();
    cleanup();
  });

  it('warns once, at setWorkerRepository, that a plain IWorkerRepository runs without leases; not for TypeOrmWorkerRepository', async () => {
    const logger = new RecordingLogger();
    const workerService = new WorkerService();
    workerService.setLogger(logger);
    workerService.setWorkerRepository(new TypeOrmWorkerRepository(dataSource));
    expect(logger.messages('warn')).toEqual([]);

    const plain: IWorkerRepository = { getWorkers: async () => [] };
    workerService.setWorkerRepository(plain);
    expect(logger.messages('warn')).toEqual([
      'The worker repository given to setWorkerRepository() has only getWorkers(): it runs without leases ' +
        '(the larascript-events adapter), so run one worker process per queue',
    ]);
    workerService.setEventService(new EventService({ workerCreator: new TypeOrmWorkerCreator(dataSource) }));
    workerService.setWorkerCreator(new TypeOrmWorkerCreator(dataSource));
    await workerService.runWorker({ queueName: 'email-queue', retries: 1, runAfterSeconds: 0, runOnce: true });
    expect(logger.messages('warn')).toHaveLength(1);
  });

  it('runs the seed\'s "Configure Dependencies" wiring: new WorkerService() plus the four setters, then runWorker', async () => {
    const workerCreator = new TypeOrmWorkerCreator(dataSource);
    const workerRepository = new TypeOrmWorkerRepository(dataSource);
    const eventService = new EventService({ workerCreator });
    const logger = new RecordingLogger();

    const workerService = new WorkerService();
    workerService.setLogger(logger);
    workerService.setEventService(eventService);
    workerService.setWorkerRepository(workerRepository);
    workerService.setWorkerCreator(workerCreator);

    await eventService.dispatch(new EmailNotificationEvent({ userId: '123', message: 'Welcome to our platform!' }));
    const options: TEventWorkerOptions = {
      queueName: 'email-queue',
      retries: 3,
      runAfterSeconds: 0,
      workerCreator: TypeOrmWorkerCreator,
    };
    await workerService.runWorker(options);

    expect(sentEmails).toEqual(['123: Welcome to our platform!']);
    expect(logger.messages('log')).toContain('Queued items: 1');
    expect(await pendingRows(dataSource)).toHaveLength(0);
  });

  it('BaseEvent exposes execute, getQueueName and getPayload with the seed meaning', () => {
    const event = new EmailNotificationEvent({ userId: '7', message: 'hello' });
    expect(event.getQueueName()).toBe('email-queue');
    expect(event.getPayload()).toEqual({ userId: '7', message: 'hello' });
    expect(event.getName()).toBe('EmailNotificationEvent');
    expect(new SeedStyleEvent({ value: 1 }).getQueueName()).toBe('seed-queue');
    expect(new ImmediateEvent({ note: 'x' }).getQueueName()).toBeUndefined();
  });

  it('queues a seed-style event (getQueueName() override) once it is registered, and runs an unqueued event at dispatch', async () => {
    const workerCreator = new TypeOrmWorkerCreator(dataSource);
    const eventService = new EventService({ workerCreator, events: [SeedStyleEvent] });
    const workerService = new WorkerService();
    workerService.setLogger(new RecordingLogger());
    workerService.setEventService(eventService);
    workerService.setWorkerRepository(new TypeOrmWorkerRepository(dataSource));
    workerService.setWorkerCreator(workerCreator);

    const id = await eventService.dispatch(new SeedStyleEvent({ value: 42 }));
    expect(id).toEqual(expect.any(String));
    const [row] = await pendingRows(dataSource);
    expect(row).toMatchObject({
      queue_name: 'seed-queue',
      event_name: 'SeedStyleEvent',
      payload: '{"value":42}',
      attempts: 0,
    });

    expect(await eventService.dispatch(new ImmediateEvent({ note: 'now' }))).toBeUndefined();
    expect(ImmediateEvent.seen).toEqual(['now']);
    expect(await pendingRows(dataSource)).toHaveLength(1);

    const result = await workerService.runWorker({
      queueName: 'seed-queue',
      retries: 3,
      runAfterSeconds: 0,
      runOnce: true,
    });
    expect(result).toEqual({ queueName: 'seed-queue', processed: 1, failed: 0, retried: 0, cancelled: 0 });
    expect(SeedStyleEvent.seen).toEqual([42]);
  });

  it('IWorkerModel, IWorkerCreator and IWorkerRepository keep the seed meaning on TypeORM', async () => {
    const creator: IWorkerCreator = new TypeOrmWorkerCreator(dataSource);
    const repository: IWorkerRepository = new TypeOrmWorkerRepository(dataSource);
    const now = new Date('2026-01-02T03:04:05.678Z');
    const data: IWorkerAttributes = {
      payload: { userId: '123', message: 'Welcome!' },
      attempts: 0,
      retries: 3,
      queueName: 'email-queue',
      eventName: 'EmailNotificationEvent',
      createdAt: now,
      updatedAt: now,
    };

    const model = creator.createWorkerModel(data);
    expect(model.getWorkerData()).toMatchObject({ ...data, id: undefined });
    await model.saveWorkerData();
    const stored = model.getWorkerData();
    expect(stored?.id).toEqual(expect.any(String));

    const [fetched] = await repository.getWorkers();
    expect(fetched?.getWorkerData()).toEqual({ ...data, id: stored?.id });

    await fetched!.updateWorkerData({ ...data, attempts: 2, error: 'SMTP connection failed' });
    const [updated] = await repository.getWorkers();
    expect(updated?.getWorkerData()).toMatchObject({ attempts: 2, error: 'SMTP connection failed' });

    const other = creator.createWorkerModel(data);
    await other.createWorkerData({ ...data, eventName: 'Other' });
    expect(await repository.getWorkers()).toHaveLength(2);
    await other.deleteWorkerData();
    expect(await repository.getWorkers()).toHaveLength(1);

    const failed = creator.createFailedWorkerModel({
      ...data,
      attempts: 3,
      error: 'SMTP connection failed',
      failedAt: now,
    });
    await failed.saveWorkerData();
    const [failedRow] = await failedRows(dataSource);
    expect(failedRow).toMatchObject({
      event_name: 'EmailNotificationEvent',
      attempts: 3,
      error: 'SMTP connection failed',
      failed_at: now.getTime(),
    });
  });

  it("answers the seed's health check written against the repository", async () => {
    const creator = new TypeOrmWorkerCreator(dataSource);
    const workerRepository = new TypeOrmWorkerRepository(dataSource);
    const now = new Date();
    const base = {
      payload: null,
      attempts: 1,
      retries: 3,
      queueName: 'q',
      eventName: 'E',
      createdAt: now,
      updatedAt: now,
    };
    await creator.createWorkerModel(base).saveWorkerData();
    await creator.createWorkerModel({ ...base, error: 'boom' }).saveWorkerData();

    // The seed's checkWorkerHealth(), verbatim but for the repository variable.
    async function checkWorkerHealth() {
      const workers = await workerRepository.getWorkers();
      return {
        active: workers.length,
        failed: workers.filter((w) => w.getWorkerData()?.error).length,
        total: workers.length,
      };
    }
    expect(await checkWorkerHealth()).toEqual({ active: 2, failed: 1, total: 2 });
  });
});

/** The seed's "Create Worker Repository": a repository of your own with only getWorkers(). */
class InMemoryWorkerModel implements IWorkerModel {
  constructor(
    private readonly store: InMemoryStore,
    private readonly target: 'pending' | 'failed',
    private data: IWorkerAttributes | null,
  ) {}
  async createWorkerData(data: IWorkerAttributes): Promise<void> {
    this.data = data;
    await this.saveWorkerData();
  }
  async updateWorkerData(data: IWorkerAttributes): Promise<void> {
    this.data = data;
    await this.saveWorkerData();
  }
  getWorkerData<T extends IWorkerAttributes = IWorkerAttributes>(): T | null {
    return this.data as T | null;
  }
  async saveWorkerData(): Promise<void> {
    if (!this.store[this.target].includes(this)) this.store[this.target].push(this);
  }
  async deleteWorkerData(): Promise<void> {
    this.store[this.target] = this.store[this.target].filter((model) => model !== this);
  }
}

interface InMemoryStore {
  pending: InMemoryWorkerModel[];
  failed: InMemoryWorkerModel[];
}

class InMemoryWorkerRepository implements IWorkerRepository {
  constructor(private readonly store: InMemoryStore) {}
  async getWorkers(): Promise<IWorkerModel[]> {
    return [...this.store.pending];
  }
}

class InMemoryWorkerCreator implements IWorkerCreator {
  static store: InMemoryStore = { pending: [], failed: [] };
  createWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return new InMemoryWorkerModel(InMemoryWorkerCreator.store, 'pending', data);
  }
  createFailedWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return new InMemoryWorkerModel(InMemoryWorkerCreator.store, 'failed', data);
  }
}

@QueueEvent('plain-queue')
class AlwaysFailingEvent extends BaseEvent<{ id: number }> {
  async execute(): Promise<void> {
    throw new Error(`SMTP error for ${this.getPayload().id}`);
  }
}

/** Writes to `CountedEvent.logger` when it runs, so the test sees runs and worker logs in one order. */
@QueueEvent('counted-queue')
class CountedEvent extends BaseEvent<{ id: number }> {
  static logger = new RecordingLogger();
  async execute(): Promise<void> {
    CountedEvent.logger.log(`ran ${this.getPayload().id}`);
  }
}

/** Stops its worker when it runs, so a test sees one claim and its log line. */
@QueueEvent('capped-queue')
class StopsTheWorkerEvent extends BaseEvent<{ n: number }> {
  static workers: WorkerService | undefined;
  async execute(): Promise<void> {
    await StopsTheWorkerEvent.workers?.shutdown(0);
  }
}

describe('seed API with a repository of your own (getWorkers() only)', () => {
  it('counts at most 10,000 rows beyond the first batch for "Queued items", and says so with a +', async () => {
    const store: InMemoryStore = { pending: [], failed: [] };
    InMemoryWorkerCreator.store = store;
    const eventService = new EventService({ workerCreator: new InMemoryWorkerCreator() });
    const workerService = new WorkerService();
    const logger = new RecordingLogger();
    workerService.setLogger(logger);
    workerService.setEventService(eventService);
    workerService.setWorkerRepository(new InMemoryWorkerRepository(store));
    await eventService.dispatchMany(Array.from({ length: 10_005 }, (_, n) => new StopsTheWorkerEvent({ n })));
    StopsTheWorkerEvent.workers = workerService;

    // The first event stops the worker: one claim of one row, and the count of the rest before it.
    await workerService.runWorker({
      queueName: 'capped-queue',
      retries: 1,
      runAfterSeconds: 0,
      workerCreator: InMemoryWorkerCreator,
      concurrency: 1,
      batchSize: 1,
    });

    expect(logger.messages('log')).toEqual([`Queued items: ${1 + QUEUED_ITEMS_COUNT_LIMIT}+`]);
    InMemoryWorkerCreator.store = { pending: [], failed: [] };
  });

  it('logs "Queued items: N" before the first event of the pass runs, counting each due row once', async () => {
    const store: InMemoryStore = { pending: [], failed: [] };
    InMemoryWorkerCreator.store = store;
    const eventService = new EventService({ workerCreator: new InMemoryWorkerCreator() });
    const workerService = new WorkerService();
    workerService.setLogger(CountedEvent.logger);
    workerService.setEventService(eventService);
    workerService.setWorkerRepository(new InMemoryWorkerRepository(store));
    for (const id of [1, 2, 3]) await eventService.dispatch(new CountedEvent({ id }));

    // One row per claim: the first claim leaves two due rows, which the count adds (the held one not again).
    await workerService.runWorker({
      queueName: 'counted-queue',
      retries: 1,
      runAfterSeconds: 0,
      workerCreator: InMemoryWorkerCreator,
      concurrency: 1,
      batchSize: 1,
    });

    expect(CountedEvent.logger.messages('log')).toEqual(['Queued items: 3', 'ran 1', 'ran 2', 'ran 3']);
    InMemoryWorkerCreator.store = { pending: [], failed: [] };
  });

  it('retries up to `retries` attempts, then moves the row to the failed store through the creator class given to runWorker', async () => {
    const store = InMemoryWorkerCreator.store;
    const eventService = new EventService({ workerCreator: new InMemoryWorkerCreator() });
    const workerService = new WorkerService();
    workerService.setLogger(new RecordingLogger());
    workerService.setEventService(eventService);
    workerService.setWorkerRepository(new InMemoryWorkerRepository(store));

    await eventService.dispatch(new AlwaysFailingEvent({ id: 1 }));
    expect(store.pending).toHaveLength(1);

    // No setWorkerCreator(): the class in the options is instantiated, as in the seed.
    const result = await workerService.runWorker({
      queueName: 'plain-queue',
      retries: 2,
      runAfterSeconds: 0,
      workerCreator: InMemoryWorkerCreator,
    });

    expect(result).toEqual({ queueName: 'plain-queue', processed: 0, failed: 1, retried: 1, cancelled: 0 });
    expect(store.pending).toHaveLength(0);
    expect(store.failed).toHaveLength(1);
    expect(store.failed[0]!.getWorkerData()).toMatchObject({
      attempts: 2,
      retries: 2,
      eventName: 'AlwaysFailingEvent',
      error: expect.stringContaining('SMTP error for 1'),
      failedAt: expect.any(Date),
    });
  });
});
