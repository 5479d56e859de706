/**
 * The IWorkerQueueRepository contract (test/support/repository-contract.ts) on every database of
 * testDatabases() with TypeOrmWorkerRepository, all of it, and on SeedRepositoryAdapter (larascript-events)
 * over getWorkers()-only repositories: in memory, and TypeORM's on SQLite. The adapter has no leases,
 * concurrent-claim safety, priority or delayed dispatch, batch writes, cancel, statistics, clock or atomic
 * failed move: those parts are not registered for it; it gets the lease-less ones (held until given back).
 */
import {
  EventService,
  FailedWorkerService,
  MAX_FAILED_PAGE_SIZE,
  TypeOrmWorkerCreator,
  TypeOrmWorkerRepository,
  type WorkerModuleOptions,
} from '../lib/index.js';
import { SeedRepositoryAdapter } from '../lib/processing/seed-repository.adapter.js';
import { SQLITE, testDatabases } from './support/databases.js';
import { PlainWorkerCreator, PlainWorkerRepository, plainStore } from './support/plain-repository.js';
import {
  CONTRACT_EVENTS,
  describeQueueRepository,
  type QueueRepositoryCapabilities,
} from './support/repository-contract.js';
import { createPeerApp, createTestApp, type TestApp } from './support/test-app.js';

const TYPEORM: QueueRepositoryCapabilities = {
  leases: true,
  concurrentClaims: true,
  scheduling: true,
  peers: true,
  cancel: true,
  batchWrites: true,
  atomicFailedMove: true,
  statistics: true,
  databaseClock: true,
};

const LARASCRIPT_ADAPTER: QueueRepositoryCapabilities = {
  leases: false,
  // Within one process: a claim holds its rows before it writes them, so a claim beside it skips them.
  concurrentClaims: true,
  scheduling: false,
  peers: false,
  cancel: false,
  batchWrites: false,
  atomicFailedMove: false,
  statistics: false,
  databaseClock: false,
};

const options: WorkerModuleOptions = { events: CONTRACT_EVENTS };

for (const database of testDatabases()) {
  describeQueueRepository(`TypeOrmWorkerRepository (${database.name})`, TYPEORM, async () => {
    const t = await createTestApp(options, {}, database);
    const peers: TestApp[] = [];
    const creator = new TypeOrmWorkerCreator(t.dataSource);
    const failedStore = new FailedWorkerService(t.dataSource);
    return {
      repository: new TypeOrmWorkerRepository(t.dataSource),
      events: t.events,
      creator,
      failedRows: async () => (await failedStore.list({ pageSize: MAX_FAILED_PAGE_SIZE })).items,
      openPeer: async () => {
        const peer = await createPeerApp(t, options, database);
        peers.push(peer);
        return new TypeOrmWorkerRepository(peer.dataSource);
      },
      // event_name is NOT NULL in the failed table.
      unstorableFailedCopy: (data) => creator.createFailedWorkerModel({ ...data, eventName: null as never }),
      close: async () => {
        for (const peer of peers) await peer.close();
        await t.close();
      },
    };
  });
}

describeQueueRepository(
  'SeedRepositoryAdapter over TypeORM getWorkers() only (SQLite)',
  LARASCRIPT_ADAPTER,
  async () => {
    const t = await createTestApp(options, {}, SQLITE);
    const typeorm = new TypeOrmWorkerRepository(t.dataSource);
    const failedStore = new FailedWorkerService(t.dataSource);
    return {
      repository: new SeedRepositoryAdapter({ getWorkers: () => typeorm.getWorkers() }),
      events: t.events,
      creator: new TypeOrmWorkerCreator(t.dataSource),
      failedRows: async () => (await failedStore.list({ pageSize: MAX_FAILED_PAGE_SIZE })).items,
      close: () => t.close(),
    };
  },
);

describeQueueRepository('SeedRepositoryAdapter over a getWorkers()-only repository', LARASCRIPT_ADAPTER, async () => {
  const store = plainStore();
  const creator = new PlainWorkerCreator(store);
  return {
    repository: new SeedRepositoryAdapter(new PlainWorkerRepository(store)),
    events: new EventService({ workerCreator: creator, events: CONTRACT_EVENTS }),
    creator,
    failedRows: async () => store.failed.map((model) => model.getWorkerData()!),
    close: async () => undefined,
  };
});
