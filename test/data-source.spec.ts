/**
 * The DataSource on every database: transactional dispatch (dispatch(event, { manager })), sharing
 * the application's TypeORM DataSource (TypeOrmModule default and named, or from forRootAsync), and
 * the shipped migrations, which leave nothing for `synchronize` to do.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type INestApplicationContext, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { getDataSourceToken, TypeOrmModule } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';
import {
  BaseEvent,
  EventService,
  QueueEvent,
  WORKER_DATA_SOURCE,
  WorkerError,
  workerEntitySchemas,
  workerMigrations,
  WorkerModule,
  WorkerService,
} from '../lib/index.js';
import {
  ensureServerDatabase,
  resetWorkerTables,
  serverDatabases,
  SQLITE,
  type TestDatabase,
  testDatabases,
  workerDatabaseName,
} from './support/databases.js';
import { createTestApp, pendingRows, runOncePass, type TestApp } from './support/test-app.js';

const executed: string[] = [];

@QueueEvent('orders')
class OrderPlacedEvent extends BaseEvent<{ orderId: string }> {
  async execute(): Promise<void> {
    executed.push(this.getPayload().orderId);
  }
}

/** TypeORM connection options of a scratch database on `database` (a temp file on SQLite). */
async function scratchConnection(
  database: TestDatabase,
  name: string,
): Promise<{ options: DataSourceOptions; cleanup(): void }> {
  if (database.type === 'better-sqlite3') {
    const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-ds-'));
    return {
      options: { type: 'better-sqlite3', database: join(dir, 'app.sqlite') },
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const url = await ensureServerDatabase(database, workerDatabaseName(name));
  return { options: { type: database.type, url } as DataSourceOptions, cleanup: () => undefined };
}

for (const database of serverDatabases())
  describe(`transactional dispatch (${database.name})`, () => {
    let t: TestApp;

    beforeEach(async () => {
      executed.length = 0;
      t = await createTestApp({ events: [OrderPlacedEvent] }, {}, database);
    });

    afterEach(async () => {
      await t.close();
    });

    it('writes no row when the transaction rolls back', async () => {
      const rollback = t.dataSource.transaction(async (manager) => {
        const id = await t.events.dispatch(new OrderPlacedEvent({ orderId: 'o-1' }), { manager });
        expect(id).toBe('1');
        throw new Error('payment declined');
      });
      await expect(rollback).rejects.toThrow('payment declined');
      expect(await pendingRows(t.dataSource)).toEqual([]);
      expect(await t.workers.runWorker(runOncePass('orders'))).toMatchObject({ processed: 0 });
    });

    it('makes the event due when the transaction commits', async () => {
      const id = await t.dataSource.transaction((manager) =>
        t.events.dispatch(new OrderPlacedEvent({ orderId: 'o-2' }), { manager }),
      );
      expect(await pendingRows(t.dataSource)).toEqual([
        expect.objectContaining({ id: Number(id), event_name: 'OrderPlacedEvent' }),
      ]);
      expect(await t.workers.runWorker(runOncePass('orders'))).toMatchObject({ processed: 1 });
      expect(executed).toEqual(['o-2']);
    });

    it('rejects an EntityManager of another DataSource, storing nothing', async () => {
      const other = await scratchConnection(database, 'other');
      const foreign = await new DataSource(other.options).initialize();
      try {
        await expect(
          t.events.dispatch(new OrderPlacedEvent({ orderId: 'o-3' }), { manager: foreign.manager }),
        ).rejects.toThrow(/EntityManager belongs to another DataSource .* a transaction cannot span two databases/);
        expect(await pendingRows(t.dataSource)).toEqual([]);
      } finally {
        await foreign.destroy();
        other.cleanup();
      }
    });
  });

describe('transactional dispatch and sharing on SQLite', () => {
  it('refuses dispatch(event, { manager }): one shared connection would absorb every other write of the process', async () => {
    const t = await createTestApp({ events: [OrderPlacedEvent] });
    try {
      const attempt = t.dataSource.transaction((manager) =>
        t.events.dispatch(new OrderPlacedEvent({ orderId: 's-1' }), { manager }),
      );
      await expect(attempt).rejects.toThrow(WorkerError);
      await expect(
        t.dataSource.transaction((manager) => t.events.dispatch(new OrderPlacedEvent({ orderId: 's-1' }), { manager })),
      ).rejects.toThrow('dispatch(event, { manager }) needs PostgreSQL or MySQL/MariaDB');
      expect(await pendingRows(t.dataSource)).toEqual([]);
    } finally {
      await t.close();
    }
  });

  it("refuses to share the application's better-sqlite3 DataSource, by token or in the options", async () => {
    const connection = await scratchConnection(SQLITE, 'app');
    const dataSource = await new DataSource({
      ...connection.options,
      entities: workerEntitySchemas('better-sqlite3'),
      synchronize: true,
    }).initialize();
    try {
      const byOption = Test.createTestingModule({
        imports: [WorkerModule.forRoot({ dataSource, autoStart: false })],
      }).compile();
      await expect(byOption).rejects.toThrow(
        'WorkerModule cannot share a better-sqlite3 DataSource with the application',
      );
      const byToken = Test.createTestingModule({
        imports: [
          TypeOrmModule.forRoot({
            ...connection.options,
            entities: workerEntitySchemas('better-sqlite3'),
            synchronize: true,
          }),
          WorkerModule.forRoot({ dataSourceToken: DataSource, autoStart: false }),
        ],
      }).compile();
      await expect(byToken).rejects.toThrow('Let the module open its own SQLite file');
    } finally {
      await dataSource.destroy();
      connection.cleanup();
    }
  });
});

for (const database of serverDatabases())
  describe(`the application's DataSource (${database.name})`, () => {
    let connection: { options: DataSourceOptions; cleanup(): void };
    const type = () => connection.options.type as 'better-sqlite3' | 'postgres' | 'mariadb';

    beforeEach(async () => {
      executed.length = 0;
      connection = await scratchConnection(database, 'app');
    });

    afterEach(() => connection.cleanup());

    async function boot(imports: Parameters<typeof Module>[0]['imports']): Promise<INestApplicationContext> {
      @Module({ imports })
      class AppModule {}
      const app = await (await Test.createTestingModule({ imports: [AppModule] }).compile()).init();
      await resetWorkerTables(app.get<DataSource>(WORKER_DATA_SOURCE));
      return app;
    }

    async function dispatchAndRun(app: INestApplicationContext): Promise<void> {
      await app.get(EventService).dispatch(new OrderPlacedEvent({ orderId: 'shared' }));
      expect(await app.get(WorkerService).runWorker(runOncePass('orders'))).toMatchObject({ processed: 1 });
      expect(executed).toEqual(['shared']);
    }

    it("uses TypeOrmModule's default DataSource through dataSourceToken, and leaves closing it to TypeORM", async () => {
      const app = await boot([
        TypeOrmModule.forRoot({ ...connection.options, entities: workerEntitySchemas(type()), synchronize: true }),
        WorkerModule.forRoot({ dataSourceToken: DataSource, events: [OrderPlacedEvent], autoStart: false }),
      ]);
      const appDataSource = app.get(DataSource);
      expect(app.get(WORKER_DATA_SOURCE)).toBe(appDataSource);
      await dispatchAndRun(app);
      await app.close();
      expect(appDataSource.isInitialized).toBe(false);
    });

    it('uses a named TypeOrmModule DataSource (getDataSourceToken(name)) with forRootAsync', async () => {
      const app = await boot([
        TypeOrmModule.forRoot({
          ...connection.options,
          name: 'jobs',
          entities: workerEntitySchemas(type()),
          synchronize: true,
        }),
        WorkerModule.forRootAsync({
          dataSourceToken: getDataSourceToken('jobs'),
          useFactory: () => ({ events: [OrderPlacedEvent], autoStart: false }),
        }),
      ]);
      expect(app.get(WORKER_DATA_SOURCE)).toBe(app.get(getDataSourceToken('jobs')));
      await dispatchAndRun(app);
      await app.close();
    });

    it('uses a DataSource given by the options factory and does not close it', async () => {
      const dataSource = await new DataSource({
        ...connection.options,
        entities: workerEntitySchemas(type()),
        synchronize: true,
      }).initialize();
      try {
        const app = await boot([
          WorkerModule.forRootAsync({
            useFactory: () => ({ dataSource, events: [OrderPlacedEvent], autoStart: false }),
          }),
        ]);
        expect(app.get(WORKER_DATA_SOURCE)).toBe(dataSource);
        await dispatchAndRun(app);
        await app.close();
        expect(dataSource.isInitialized).toBe(true);
      } finally {
        await dataSource.destroy();
      }
    });

    it('refuses a DataSource without the queue entities at startup, saying what to add', async () => {
      const dataSource = await new DataSource(connection.options).initialize();
      try {
        const compile = Test.createTestingModule({
          imports: [WorkerModule.forRoot({ dataSource, autoStart: false })],
        }).compile();
        await expect(compile).rejects.toThrow(WorkerError);
        await expect(
          Test.createTestingModule({ imports: [WorkerModule.forRoot({ dataSource, autoStart: false })] }).compile(),
        ).rejects.toThrow(`add ...workerEntitySchemas('${type()}') to its entities`);
      } finally {
        await dataSource.destroy();
      }
    });
  });

describe.each(testDatabases())('shipped migrations ($name)', (database) => {
  let connection: { options: DataSourceOptions; cleanup(): void };
  const type = () => connection.options.type as 'better-sqlite3' | 'postgres' | 'mariadb';

  beforeEach(async () => {
    connection = await scratchConnection(database, 'migrate');
  });

  afterEach(() => connection.cleanup());

  it('creates the tables with the shipped migrations, leaving nothing for synchronize, and reverts them', async () => {
    const dataSource = await new DataSource({
      ...connection.options,
      entities: workerEntitySchemas(type()),
      migrations: workerMigrations(type()),
      migrationsTableName: 'nestjs_workers_migrations_test',
    }).initialize();
    try {
      // Start from an empty schema, whatever earlier tests left on this database.
      for (const table of [
        'nestjs_failed_workers',
        'nestjs_workers',
        'nestjs_workers_schedules',
        'nestjs_workers_migrations_test',
      ]) {
        await dataSource.query(`DROP TABLE IF EXISTS ${dataSource.driver.escape(table)}`);
      }
      const migrations = workerMigrations(type());
      expect(await dataSource.runMigrations()).toHaveLength(migrations.length);
      const pending = await dataSource.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((query) => query.query)).toEqual([]);
      // TypeORM's schema builder does not compare index conditions: check the partial unique index itself.
      const [uniqueIndex] = await dataSource.query<{ definition: string }[]>(
        type() === 'postgres'
          ? "SELECT indexdef AS definition FROM pg_indexes WHERE indexname = 'IDX_nestjs_workers_unique'"
          : type() === 'better-sqlite3'
            ? "SELECT sql AS definition FROM sqlite_master WHERE name = 'IDX_nestjs_workers_unique'"
            : "SELECT GROUP_CONCAT(COLUMN_NAME ORDER BY SEQ_IN_INDEX) AS definition FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND INDEX_NAME = 'IDX_nestjs_workers_unique'",
      );
      if (type() === 'mariadb') expect(uniqueIndex!.definition).toBe('queue_name,unique_key');
      else expect(uniqueIndex!.definition).toMatch(/WHERE \(?"?unique_key"? IS NOT NULL\)?/);
      // Nor collations: the name columns must compare exactly (NO PAD), as the entities say (issue 14 point 10).
      if (type() === 'mariadb') {
        const collations = await dataSource.query<{ name: string; collation: string }[]>(
          "SELECT CONCAT(TABLE_NAME, '.', COLUMN_NAME) AS name, COLLATION_NAME AS collation FROM information_schema.COLUMNS " +
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ('nestjs_workers', 'nestjs_failed_workers', 'nestjs_workers_schedules') " +
            "AND COLUMN_NAME IN ('queue_name', 'event_name', 'unique_key', 'name') ORDER BY name",
        );
        expect(collations).toEqual(
          [
            'nestjs_failed_workers.event_name',
            'nestjs_failed_workers.queue_name',
            'nestjs_failed_workers.unique_key',
            'nestjs_workers.event_name',
            'nestjs_workers.queue_name',
            'nestjs_workers.unique_key',
            'nestjs_workers_schedules.name',
          ].map((name) => ({ name, collation: 'utf8mb4_nopad_bin' })),
        );
      }
      // Reverting the later migrations gives back the first release's schema, which they migrate again.
      for (let undone = 1; undone < migrations.length; undone++) await dataSource.undoLastMigration();
      const runner = dataSource.createQueryRunner();
      try {
        expect(await runner.hasTable('nestjs_workers_schedules')).toBe(false);
        expect(await runner.hasColumn('nestjs_workers', 'priority')).toBe(false);
        expect(await runner.hasColumn('nestjs_workers', 'attempts')).toBe(true);
        expect(await dataSource.runMigrations()).toHaveLength(migrations.length - 1);
        expect((await dataSource.driver.createSchemaBuilder().log()).upQueries).toEqual([]);
        for (let undone = 0; undone < migrations.length; undone++) await dataSource.undoLastMigration();
        expect(await runner.hasTable('nestjs_workers')).toBe(false);
      } finally {
        await runner.release();
      }
    } finally {
      await dataSource.destroy();
    }
  });
});

describe.each(testDatabases())('lease expiry migration ($name)', (database) => {
  it('keeps the lease of a row leased when it runs (copied to lease_expires_at), and gives it back to available_at on the way down', async () => {
    const connection = await scratchConnection(database, 'migrate-lease');
    const type = connection.options.type as 'better-sqlite3' | 'postgres' | 'mariadb';
    const migrations = workerMigrations(type);
    // The lease migration and any that came after it (MySQL/MariaDB: the exact-names one).
    const fromLease =
      migrations.length - migrations.findIndex((migration) => migration.name.startsWith('AddNestjsWorkerLeaseExpiry'));
    const dataSource = await new DataSource({
      ...connection.options,
      entities: workerEntitySchemas(type),
      migrations,
      migrationsTableName: 'nestjs_workers_migrations_lease_test',
    }).initialize();
    try {
      for (const table of [
        'nestjs_failed_workers',
        'nestjs_workers',
        'nestjs_workers_schedules',
        'nestjs_workers_migrations_lease_test',
      ]) {
        await dataSource.query(`DROP TABLE IF EXISTS ${dataSource.driver.escape(table)}`);
      }
      await dataSource.runMigrations();
      for (let undone = 0; undone < fromLease; undone++) await dataSource.undoLastMigration();
      const runner = dataSource.createQueryRunner();
      expect(await runner.hasColumn('nestjs_workers', 'lease_expires_at')).toBe(false);
      await runner.release();
      // As the previous release leased a row: available_at moved to the lease expiry.
      const expiry = Date.now() + 30_000;
      await dataSource.query(
        'INSERT INTO nestjs_workers (queue_name, event_name, payload, attempts, retries, created_at, updated_at, available_at, lease_token, locked_by) ' +
          `VALUES ('q', 'E', NULL, 1, 3, 1000, 1000, ${expiry}, 'token', 'worker'), ('q', 'E', NULL, 0, 3, 1000, 1000, 2000, NULL, NULL)`,
      );
      expect(await dataSource.runMigrations()).toHaveLength(fromLease);
      const rows = (await dataSource.query(
        'SELECT available_at, lease_expires_at FROM nestjs_workers ORDER BY id',
      )) as Record<string, unknown>[];
      expect(
        rows.map((row) => [
          Number(row.available_at),
          row.lease_expires_at === null ? null : Number(row.lease_expires_at),
        ]),
      ).toEqual([
        [expiry, expiry],
        [2000, null],
      ]);
      await dataSource.query(
        'UPDATE nestjs_workers SET available_at = 1000, lease_expires_at = ' +
          String(expiry + 5000) +
          ' WHERE lease_token IS NOT NULL',
      );
      for (let undone = 0; undone < fromLease; undone++) await dataSource.undoLastMigration();
      const reverted = (await dataSource.query('SELECT available_at FROM nestjs_workers ORDER BY id')) as Record<
        string,
        unknown
      >[];
      expect(reverted.map((row) => Number(row.available_at))).toEqual([expiry + 5000, 2000]);
    } finally {
      await dataSource.destroy();
      connection.cleanup();
    }
  });
});
