/**
 * TypeORM storage on embedded SQLite: the two tables with every larascript-events attribute plus id,
 * due time and lease fields, the due index, :memory:, the busy timeout, and claims that never lease one
 * row to two workers on separate connections.
 */
import { DataSource } from 'typeorm';
import { BaseEvent, QueueEvent, TypeOrmWorkerRepository, workerEntitySchemas } from '../lib/index.js';
import { dialectFor } from '../lib/storage/dialects/dialect-for.js';
import { sqliteClaimStatement } from '../lib/storage/dialects/sqlite.dialect.js';
import { countDueStatement } from '../lib/storage/sql/count-due.js';
import { workerTables } from '../lib/storage/worker-tables.js';
import { createTestApp, tempDatabase } from './support/test-app.js';

@QueueEvent('storage')
class StoredEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

describe('SQLite storage', () => {
  it('creates the pending and failed tables with the seed attributes, due time, lease fields, job state and the due index', async () => {
    const t = await createTestApp({ database: { busyTimeoutMs: 1234 } });
    try {
      const columns = async (table: string) =>
        ((await t.dataSource.query(`PRAGMA table_info(${table})`)) as { name: string }[])
          .map((column) => column.name)
          .sort();
      expect(await columns('nestjs_workers')).toEqual([
        'attempts',
        'available_at',
        'concurrency_key',
        'created_at',
        'deleted_at',
        'error',
        'event_name',
        'id',
        'lease_expires_at',
        'lease_token',
        'locked_by',
        'payload',
        'priority',
        'progress',
        'queue_name',
        'retries',
        'started_at',
        'unique_key',
        'updated_at',
      ]);
      expect(await columns('nestjs_failed_workers')).toEqual([
        'attempts',
        'available_at',
        'concurrency_key',
        'created_at',
        'deleted_at',
        'duration_ms',
        'error',
        'event_name',
        'failed_at',
        'id',
        'job_id',
        'payload',
        'priority',
        'progress',
        'queue_name',
        'retries',
        'started_at',
        'unique_key',
        'updated_at',
        'worker_id',
      ]);
      const indexColumns = async (index: string) =>
        ((await t.dataSource.query(`PRAGMA index_info('${index}')`)) as { name: string }[]).map((c) => c.name);
      expect(await indexColumns('IDX_nestjs_workers_due')).toEqual(['queue_name', 'available_at', 'id']);
      expect(await indexColumns('IDX_nestjs_workers_claim')).toEqual(['queue_name', 'priority', 'available_at', 'id']);
      expect(await t.dataSource.query('PRAGMA busy_timeout')).toEqual([{ timeout: 1234 }]);
    } finally {
      await t.close();
    }
  });

  it('finds "due rows of queue Q by priority, oldest first" with an index search, not a table scan', async () => {
    const t = await createTestApp();
    // The statements the repository sends: the claim (whole) and the due count that bounds it.
    const { pending } = workerTables(t.dataSource);
    const claim = (dueBy: number) =>
      sqliteClaimStatement(workerTables(t.dataSource)).bind({
        queueName: 'storage',
        dueBy,
        limit: 10,
        workerId: 'plan',
        leaseToken: 'plan',
        leaseMs: 60_000,
      });
    const countDue = (dueBy: number) =>
      countDueStatement(pending, dialectFor(t.dataSource)).bind({ queueName: 'storage', dueBy, limit: 10 });
    const plan = async ({ sql, parameters }: { sql: string; parameters: unknown[] }) =>
      ((await t.dataSource.query(`EXPLAIN QUERY PLAN ${sql}`, parameters)) as { detail: string }[])
        .map((step) => step.detail)
        .join('\n');
    try {
      for (let n = 0; n < 50; n++) await t.events.dispatch(new StoredEvent({ n }));
      await t.dataSource.query('ANALYZE');
      const details = await plan(claim(Date.now()));
      expect(details).toContain('SEARCH nestjs_workers USING INDEX IDX_nestjs_workers_claim (queue_name=?)');
      expect(details).not.toContain('TEMP B-TREE');
      // The count that bounds the claim is one range of the due index when delayed rows dominate.
      await t.events.dispatchMany(
        Array.from({ length: 3000 }, (_, n) => new StoredEvent({ n })),
        { delaySeconds: 3600 },
      );
      await t.dataSource.query('ANALYZE');
      expect(await plan(countDue(Date.now()))).toContain(
        'USING INDEX IDX_nestjs_workers_due (queue_name=? AND available_at<?)',
      );
    } finally {
      await t.close();
    }
  });

  it("honours the seed's soft delete: a row with deletedAt set is neither listed, counted nor claimed", async () => {
    const t = await createTestApp();
    try {
      await t.events.dispatch(new StoredEvent({ n: 1 }));
      await t.events.dispatch(new StoredEvent({ n: 2 }));
      const repository = new TypeOrmWorkerRepository(t.dataSource);
      const [first] = await repository.getWorkers();
      const deletedAt = new Date('2026-03-04T05:06:07.089Z');
      await first!.updateWorkerData({ ...first!.getWorkerData()!, deletedAt });

      const [reloaded] = await t.dataSource.query('SELECT deleted_at FROM nestjs_workers WHERE id = 1');
      expect(reloaded).toEqual({ deleted_at: deletedAt.getTime() });
      expect((await repository.getWorkers()).map((model) => model.getWorkerData()?.payload)).toEqual([{ n: 2 }]);
      expect(await t.workers.getHealth(['storage'])).toEqual([
        { queueName: 'storage', active: 1, failed: 0, total: 1 },
      ]);
      expect(await t.workers.runWorker({ queueName: 'storage', retries: 1, runAfterSeconds: 0 })).toMatchObject({
        processed: 1,
      });
      expect(await t.dataSource.query('SELECT id FROM nestjs_workers')).toEqual([{ id: 1 }]);
    } finally {
      await t.close();
    }
  });

  it('runs on an in-memory database', async () => {
    const t = await createTestApp({ database: { database: ':memory:' } });
    try {
      await t.events.dispatch(new StoredEvent({ n: 1 }));
      expect(
        await t.workers.runWorker({ queueName: 'storage', retries: 1, runAfterSeconds: 0, runOnce: true }),
      ).toMatchObject({ processed: 1 });
    } finally {
      await t.close();
    }
  });

  it('never leases one row to two workers sharing the database file through separate connections', async () => {
    const database = tempDatabase();
    const open = () =>
      new DataSource({
        type: 'better-sqlite3',
        database: database.file,
        entities: workerEntitySchemas('better-sqlite3'),
        synchronize: true,
        enableWAL: true,
      }).initialize();
    const first = await open();
    const second = await open();
    try {
      const now = Date.now();
      const values = Array.from(
        { length: 300 },
        (_, n) => `('storage', 'StoredEvent', '{"n":${n}}', 0, 3, ${now}, ${now}, ${now})`,
      );
      await first.query(
        `INSERT INTO nestjs_workers (queue_name, event_name, payload, attempts, retries, available_at, created_at, updated_at) VALUES ${values.join(',')}`,
      );
      const workers = [new TypeOrmWorkerRepository(first), new TypeOrmWorkerRepository(second)];
      const claimedBy = workers.map(() => [] as string[]);
      await Promise.all(
        workers.map(async (worker, index) => {
          for (;;) {
            const batch = await worker.claimWorkers({
              queueName: 'storage',
              limit: 7,
              workerId: `w${index}`,
              leaseMs: 60_000,
              dueBy: new Date(),
            });
            if (batch.length === 0) return;
            claimedBy[index]!.push(...batch.map((model) => model.getWorkerData()!.id!));
            await new Promise((resolve) => setImmediate(resolve));
          }
        }),
      );
      const all = [...claimedBy[0]!, ...claimedBy[1]!];
      expect(new Set(all).size).toBe(300);
      expect(all).toHaveLength(300);
      expect(claimedBy[0]!.length).toBeGreaterThan(0);
      expect(claimedBy[1]!.length).toBeGreaterThan(0);
      const [{ leased }] = await first.query(
        'SELECT COUNT(*) AS leased FROM nestjs_workers WHERE lease_token IS NOT NULL AND attempts = 1',
      );
      expect(leased).toBe(300);
    } finally {
      await first.destroy();
      await second.destroy();
      database.cleanup();
    }
  });
});
