/**
 * Startup failures on every database: missing queue tables or columns fail with an error saying how
 * to create them, and a startup that fails after the module opened its DataSource closes it again
 * (Nest calls no shutdown hook then).
 */
import { Test } from '@nestjs/testing';
import { DataSource } from 'typeorm';
import {
  BaseEvent,
  DuplicateEventNameError,
  InvalidWorkerOptionsError,
  MissingWorkerTablesError,
  WorkerModule,
  type WorkerModuleOptions,
  workerEntitySchemas,
  workerMigrations,
} from '../lib/index.js';
import {
  ensureServerDatabase,
  openConnections,
  type TestDatabase,
  testDatabases,
  workerDatabaseName,
} from './support/databases.js';
import { tempDatabase, waitFor } from './support/test-app.js';

/** Two different classes that both register as "SameNamedEvent". */
function sameNamedEvent() {
  return class SameNamedEvent extends BaseEvent<null> {
    override getQueueName(): string {
      return 'startup-queue';
    }
    async execute(): Promise<void> {}
  };
}

class UnregisteredEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

/** A database of this file's own, and what openConnections() counts for it. */
interface Target {
  options: NonNullable<WorkerModuleOptions['database']>;
  /** The server database's name, or the SQLite file. */
  connectionsOf: string;
  url?: string;
  cleanup(): void;
}

async function target(database: TestDatabase, purpose: string, options: Partial<Target['options']>): Promise<Target> {
  if (database.type === 'better-sqlite3') {
    const file = tempDatabase();
    return {
      options: { database: file.file, ...options } as Target['options'],
      connectionsOf: file.file,
      cleanup: file.cleanup,
    };
  }
  const name = workerDatabaseName(purpose);
  const url = await ensureServerDatabase(database, name);
  return {
    options: { type: database.type, url, ...options } as Target['options'],
    connectionsOf: name,
    url,
    cleanup: () => undefined,
  };
}

/** Starts the module on `options` the way an application does (create, then init, which runs the hooks). */
async function start(options: WorkerModuleOptions): Promise<() => Promise<void>> {
  const moduleRef = await Test.createTestingModule({ imports: [WorkerModule.forRoot(options)] }).compile();
  const app = await moduleRef.init();
  return () => app.close();
}

/** The module's connections are gone; PostgreSQL may take a moment to drop a closed backend from its view. */
async function expectNoConnections(database: TestDatabase, t: Target): Promise<void> {
  await waitFor(async () => (await openConnections(database, t.connectionsOf)) === 0, 3000).catch(() => undefined);
  expect(await openConnections(database, t.connectionsOf)).toBe(0);
}

describe.each(testDatabases())('startup on $name', (database) => {
  const migrationsType = database.type;

  it('refuses a database without the queue tables, naming how to create them (migrationsRun: true, workerMigrations(type)), and closes its connections', async () => {
    const t = await target(database, 'notables', { synchronize: false });
    const startup = start({ database: t.options });
    await expect(startup).rejects.toBeInstanceOf(MissingWorkerTablesError);
    await expect(startup).rejects.toThrow('nestjs_workers');
    await expect(startup).rejects.toThrow(
      database.type === 'better-sqlite3' ? 'synchronize at true' : 'migrationsRun: true',
    );
    await expect(startup).rejects.toThrow(`workerMigrations('${migrationsType}')`);
    await expectNoConnections(database, t);
    if (database.type !== 'better-sqlite3') {
      // As the error advises: the package's migrations create the tables, and the module boots.
      const close = await start({
        autoStart: false,
        database: { ...t.options, migrationsRun: true } as Target['options'],
      });
      await close();
    }
    t.cleanup();
  });

  if (database.type !== 'better-sqlite3') {
    it('refuses a database of the earlier release (tables without lease_expires_at), naming the column and the migrations', async () => {
      const t = await target(database, 'oldschema', {});
      const type = database.type as 'postgres' | 'mariadb';
      // The tables as the release before the lease-expiry migration left them.
      const migrations = workerMigrations(type).filter(
        (migration) => !migration.name.startsWith('AddNestjsWorkerLeaseExpiry'),
      );
      const earlier = await new DataSource({
        type,
        url: t.url,
        migrations,
        migrationsTableName: 'nestjs_workers_migrations',
      }).initialize();
      await earlier.runMigrations();
      await earlier.destroy();

      const startup = start({ database: t.options });
      await expect(startup).rejects.toBeInstanceOf(MissingWorkerTablesError);
      await expect(startup).rejects.toThrow('the columns nestjs_workers.lease_expires_at do not exist');
      await expect(startup).rejects.toThrow('migrationsRun: true');
      await expectNoConnections(database, t);
      // As the error advises: migrationsRun runs the one migration the database lacks, and the module boots.
      const close = await start({
        autoStart: false,
        database: { ...t.options, migrationsRun: true } as Target['options'],
      });
      await close();
    });
  }

  if (database.type !== 'better-sqlite3') {
    it("refuses an application's DataSource whose database has no queue tables", async () => {
      const t = await target(database, 'appnotables', {});
      const type = database.type as 'postgres' | 'mariadb';
      const dataSource = await new DataSource({ type, url: t.url, entities: workerEntitySchemas(type) }).initialize();
      try {
        const startup = start({ dataSource });
        await expect(startup).rejects.toBeInstanceOf(MissingWorkerTablesError);
        await expect(startup).rejects.toThrow(
          `add ...workerMigrations('${migrationsType}') to the migrations of your own DataSource`,
        );
        // The application's DataSource is the application's to close.
        expect(dataSource.isInitialized).toBe(true);
      } finally {
        await dataSource.destroy();
      }
    });
  }

  it('closes its DataSource when startup fails on two event classes of one name', async () => {
    const t = await target(database, 'startup', { synchronize: true });
    // The probe sees a healthy module's connections, and app.close() closing them.
    const close = await start({ autoStart: false, database: t.options });
    expect(await openConnections(database, t.connectionsOf)).toBeGreaterThan(0);
    await close();
    await expectNoConnections(database, t);
    const startup = start({ autoStart: false, database: t.options, events: [sameNamedEvent(), sameNamedEvent()] });
    await expect(startup).rejects.toBeInstanceOf(DuplicateEventNameError);
    await expectNoConnections(database, t);
    t.cleanup();
  });

  it('closes its DataSource when a recurring schedule is refused at startup (onModuleInit)', async () => {
    const t = await target(database, 'startup', { synchronize: true });
    const startup = start({
      database: t.options,
      queues: { 'startup-queue': {} },
      recurring: [{ event: UnregisteredEvent, cron: '*/5 * * * *' }],
    });
    await expect(startup).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
    await expect(startup).rejects.toThrow('recurring[0].event');
    await expectNoConnections(database, t);
    t.cleanup();
  });
});
