/**
 * The creator as a capability (IWorkerRowStore): a creator of the application's own that offers it
 * gets what TypeOrmWorkerCreator gets (unique keys, dispatch within a caller's transaction, bulk
 * inserts, the database's clock), whatever its class; one without it keeps what its models' storage
 * can do (TypeORM models: unique keys, transactions, bulk inserts), and other models are refused them.
 */
import {
  BaseEvent,
  EventService,
  type IWorkerAttributes,
  type IWorkerCreator,
  type IWorkerModel,
  type IWorkerRowStore,
  isWorkerRowStore,
  QueueEvent,
  type StoredRow,
  TypeOrmWorkerCreator,
} from '../lib/index.js';
import type { EntityManager } from 'typeorm';
import { testDatabases } from './support/databases.js';
import { createTestApp, pendingRows, type TestApp } from './support/test-app.js';

@QueueEvent('row-store')
class StoredEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

/** A thin wrapper, not a TypeOrmWorkerCreator: it offers the capability by delegating each member. */
class DelegatingRowStore implements IWorkerRowStore {
  readonly calls: string[] = [];
  constructor(private readonly inner: TypeOrmWorkerCreator) {}

  get clock(): IWorkerRowStore['clock'] {
    return this.inner.clock;
  }

  get enforcesUniqueKeys(): boolean {
    return this.inner.enforcesUniqueKeys;
  }

  createWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return this.inner.createWorkerModel(data);
  }

  createFailedWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return this.inner.createFailedWorkerModel(data);
  }

  insertModel(model: IWorkerModel, manager?: EntityManager): Promise<StoredRow> {
    this.calls.push('insertModel');
    return this.inner.insertModel(model, manager);
  }

  insertModels(models: IWorkerModel[], manager?: EntityManager): Promise<string[]> {
    this.calls.push('insertModels');
    return this.inner.insertModels(models, manager);
  }

  insertNewRows(rows: IWorkerAttributes[], manager?: EntityManager): Promise<string[]> {
    this.calls.push('insertNewRows');
    return this.inner.insertNewRows(rows, manager);
  }
}

/** The same wrapper with larascript-events' two methods only: its models are TypeORM's, its class says nothing. */
class PlainWrapper implements IWorkerCreator {
  constructor(private readonly inner: TypeOrmWorkerCreator) {}

  createWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return this.inner.createWorkerModel(data);
  }

  createFailedWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return this.inner.createFailedWorkerModel(data);
  }
}

describe.each(testDatabases())('a replaced creator that stores rows itself ($name)', (database) => {
  let t: TestApp;
  let store: DelegatingRowStore;
  let events: EventService;

  beforeEach(async () => {
    t = await createTestApp({ events: [StoredEvent] }, {}, database);
    store = new DelegatingRowStore(new TypeOrmWorkerCreator(t.dataSource));
    events = new EventService({ workerCreator: store, events: [StoredEvent] });
  });

  afterEach(() => t.close());

  it('is detected by its members, not by its class', () => {
    expect(store).not.toBeInstanceOf(TypeOrmWorkerCreator);
    expect(isWorkerRowStore(store)).toBe(true);
    expect(isWorkerRowStore(new PlainWrapper(new TypeOrmWorkerCreator(t.dataSource)))).toBe(false);
    expect(isWorkerRowStore(new TypeOrmWorkerCreator(t.dataSource))).toBe(true);
  });

  it('enforces unique keys: a second dispatch with a taken key adopts the row holding it', async () => {
    const first = await events.dispatch(new StoredEvent({ n: 1 }), { uniqueKey: 'daily' });
    const second = await events.dispatch(new StoredEvent({ n: 2 }), { uniqueKey: 'daily' });
    expect(second).toBe(first);
    const rows = await pendingRows(t.dataSource);
    expect(rows.map((row) => [String(row.id), JSON.parse(String(row.payload))])).toEqual([[first, { n: 1 }]]);
    expect(store.calls).toEqual(['insertModel', 'insertModel']);
  });

  it('stores many events through its bulk insert, ids in order', async () => {
    const ids = await events.dispatchMany([0, 1, 2].map((n) => new StoredEvent({ n })));
    const rows = await pendingRows(t.dataSource);
    const byId = new Map(rows.map((row) => [String(row.id), JSON.parse(String(row.payload))]));
    expect(ids.map((id) => byId.get(id))).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    expect(store.calls).toEqual(['insertNewRows']);
  });

  if (database.type === 'better-sqlite3') {
    it('is refused a caller transaction on SQLite, as TypeOrmWorkerCreator is', async () => {
      await expect(
        t.dataSource.transaction((manager) => events.dispatch(new StoredEvent({ n: 1 }), { manager })),
      ).rejects.toThrow('dispatch(event, { manager }) needs PostgreSQL or MySQL/MariaDB');
    });
  } else {
    it("dispatches within the caller's transaction: a rollback leaves no row, a commit one", async () => {
      await expect(
        t.dataSource.transaction(async (manager) => {
          await events.dispatch(new StoredEvent({ n: 1 }), { manager });
          await events.dispatchMany([new StoredEvent({ n: 2 })], { manager });
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
      expect(await pendingRows(t.dataSource)).toEqual([]);
      const id = await t.dataSource.transaction((manager) => events.dispatch(new StoredEvent({ n: 3 }), { manager }));
      expect((await pendingRows(t.dataSource)).map((row) => String(row.id))).toEqual([id]);
      expect(store.calls).toEqual(['insertModel', 'insertNewRows', 'insertModel']);
    });
  }

  it('a wrapper without the capability keeps what its TypeORM models can do, as it always did', async () => {
    const plain = new EventService({ workerCreator: new PlainWrapper(new TypeOrmWorkerCreator(t.dataSource)) });
    plain.registerEvents(StoredEvent);
    const first = await plain.dispatch(new StoredEvent({ n: 1 }), { uniqueKey: 'daily' });
    expect(await plain.dispatch(new StoredEvent({ n: 2 }), { uniqueKey: 'daily' })).toBe(first);
    if (database.type !== 'better-sqlite3') {
      await expect(
        t.dataSource.transaction(async (manager) => {
          await plain.dispatchMany([new StoredEvent({ n: 3 })], { manager });
          throw new Error('rolled back');
        }),
      ).rejects.toThrow('rolled back');
    }
    const ids = await plain.dispatchMany([new StoredEvent({ n: 4 }), new StoredEvent({ n: 5 })]);
    expect((await pendingRows(t.dataSource)).map((row) => String(row.id)).sort()).toEqual([first, ...ids].sort());
  });
});
