/**
 * What only a server database shows (PostgreSQL, MariaDB): "due rows of queue Q, oldest first" is an
 * index scan of IDX_nestjs_workers_due with no sort step, so a claim touches and locks only the rows it
 * takes; a row dispatched in an open transaction stays invisible to workers until it commits.
 */
import { BaseEvent, QueueEvent } from '../lib/index.js';
import { dialectFor } from '../lib/storage/dialects/dialect-for.js';
import { mysqlClaimSelect } from '../lib/storage/dialects/mysql.dialect.js';
import { postgresClaimStatement } from '../lib/storage/dialects/postgres.dialect.js';
import type { ClaimParameters } from '../lib/storage/sql/claim.js';
import { countDueStatement } from '../lib/storage/sql/count-due.js';
import { workerTables } from '../lib/storage/worker-tables.js';
import { serverDatabases } from './support/databases.js';
import { createTestApp, runOncePass } from './support/test-app.js';

@QueueEvent('plan-a')
class PlanEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

const executed: string[] = [];

@QueueEvent('isolated-orders')
class IsolatedOrderEvent extends BaseEvent<{ orderId: string }> {
  async execute(): Promise<void> {
    executed.push(this.getPayload().orderId);
  }
}

@QueueEvent('plan-b')
class OtherPlanEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

describe.each(serverDatabases())('claim query plan ($name)', (database) => {
  /** The claim's parameters: what a worker sends for a batch of 10. */
  const claimOf = (dueBy: number): ClaimParameters => ({
    queueName: 'plan-a',
    dueBy,
    limit: 10,
    workerId: 'plan',
    leaseToken: 'plan',
    leaseMs: 60_000,
  });
  /**
   * 3,000 rows of two queues (some urgent), plus 2,000 delayed rows of the claimed queue: the
   * delayed rows are what a walk in priority order must not pass on an idle poll.
   */
  async function seeded(): Promise<Awaited<ReturnType<typeof createTestApp>>> {
    const t = await createTestApp({ events: [PlanEvent, OtherPlanEvent] }, {}, database);
    const rows = Array.from({ length: 3000 }, (_, n) => n);
    await t.events.dispatchMany(
      rows.map((n) => (n % 3 === 0 ? new PlanEvent({ n }) : new OtherPlanEvent({ n }))),
      { priority: 0 },
    );
    await t.events.dispatchMany(
      rows.filter((n) => n % 5 === 0).map((n) => new PlanEvent({ n })),
      { priority: -1 },
    );
    await t.events.dispatchMany(
      rows.slice(0, 2000).map((n) => new PlanEvent({ n })),
      { delaySeconds: 3600 },
    );
    await t.dataSource.query(database.type === 'postgres' ? 'ANALYZE nestjs_workers' : 'ANALYZE TABLE nestjs_workers');
    return t;
  }

  it('claims due rows of one queue by priority, then oldest first, walking the claim index without sorting', async () => {
    const t = await seeded();
    const tables = workerTables(t.dataSource);
    try {
      const due = Date.now();
      if (database.type === 'postgres') {
        // The whole claim statement: the UPDATE of the locked ids and its SELECT … FOR UPDATE SKIP LOCKED.
        const { sql, parameters } = postgresClaimStatement(tables).bind(claimOf(due));
        const [{ 'QUERY PLAN': plan }] = (await t.dataSource.query(`EXPLAIN (FORMAT JSON) ${sql}`, parameters)) as {
          'QUERY PLAN': unknown;
        }[];
        const text = JSON.stringify(plan);
        expect(text).toContain('"Index Name":"IDX_nestjs_workers_claim"');
        expect(text).not.toContain('"Node Type":"Sort"');
        expect(text).not.toContain('"Node Type":"Seq Scan"');
      } else {
        // The claim's locking SELECT (the UPDATE after it takes the locked rows by primary key).
        const { sql, parameters } = mysqlClaimSelect(tables, claimOf(due));
        const [step] = (await t.dataSource.query(`EXPLAIN ${sql}`, parameters)) as {
          key: string;
          type: string;
          Extra: string | null;
        }[];
        expect(step).toMatchObject({ key: 'IDX_nestjs_workers_claim' });
        expect(['ref', 'range']).toContain(step!.type);
        expect(step!.Extra ?? '').not.toContain('filesort');
      }
    } finally {
      await t.close();
    }
  });

  it('bounds the claim by a count of due rows that reads one range of the due index, not the delayed rows', async () => {
    const t = await seeded();
    const dialect = dialectFor(t.dataSource);
    try {
      // An idle queue: everything due was claimed, 2,000 delayed rows remain.
      await t.workers.runWorker(runOncePass('plan-a', { batchSize: 5000 }));
      await t.dataSource.query(
        database.type === 'postgres' ? 'ANALYZE nestjs_workers' : 'ANALYZE TABLE nestjs_workers',
      );
      // The count the repository sends (the dialect spells its placeholders, as when it runs it).
      const { sql, parameters } = countDueStatement(workerTables(t.dataSource).pending, dialect).bind({
        queueName: 'plan-a',
        dueBy: Date.now(),
        limit: 10,
      });
      if (database.type === 'postgres') {
        const [{ 'QUERY PLAN': plan }] = (await dialect.query({ sql: `EXPLAIN (FORMAT JSON) ${sql}`, parameters })) as {
          'QUERY PLAN': unknown;
        }[];
        const text = JSON.stringify(plan);
        expect(text).toContain('"Index Name":"IDX_nestjs_workers_due"');
        expect(text).toMatch(/"Index Cond":"\(\(\(queue_name\)::text = 'plan-a'::text\) AND \(available_at <= /);
      } else {
        const steps = (await dialect.query({ sql: `EXPLAIN ${sql}`, parameters })) as {
          key: string | null;
          type: string;
        }[];
        expect(steps).toContainEqual(expect.objectContaining({ key: 'IDX_nestjs_workers_due', type: 'range' }));
      }
      // With nothing due, a claim is that count alone and claims nothing.
      expect(await t.workers.runWorker(runOncePass('plan-a'))).toMatchObject({ processed: 0 });
    } finally {
      await t.close();
    }
  });
});

describe.each(serverDatabases())('transactional dispatch isolation ($name)', (database) => {
  it('keeps the row invisible to workers until the transaction commits', async () => {
    executed.length = 0;
    const t = await createTestApp({ events: [IsolatedOrderEvent] }, {}, database);
    try {
      await t.dataSource.transaction(async (manager) => {
        await t.events.dispatch(new IsolatedOrderEvent({ orderId: 'o-4' }), { manager });
        expect(await t.workers.runWorker(runOncePass('isolated-orders'))).toMatchObject({ processed: 0 });
      });
      expect(await t.workers.runWorker(runOncePass('isolated-orders'))).toMatchObject({ processed: 1 });
      expect(executed).toEqual(['o-4']);
    } finally {
      await t.close();
    }
  });
});

describe.each(serverDatabases().filter((database) => database.type === 'postgres'))(
  'PostgreSQL claim statement ($name)',
  (database) => {
    it('updates the locked ids through the primary key (no scan of the table) and leaves the session as it was', async () => {
      const t = await createTestApp({ events: [PlanEvent] }, {}, database);
      try {
        await t.events.dispatchMany(Array.from({ length: 2000 }, (_, n) => new PlanEvent({ n })));
        await t.dataSource.query('ANALYZE nestjs_workers');
        const claims: { sql: string; parameters: unknown[] }[] = [];
        const query = t.dataSource.query.bind(t.dataSource);
        t.dataSource.query = ((sql: string, parameters?: unknown[]) => {
          if (sql.startsWith('WITH claimed AS')) claims.push({ sql, parameters: parameters ?? [] });
          return query(sql, parameters);
        }) as typeof t.dataSource.query;
        expect(await t.workers.runWorker(runOncePass('plan-a', { batchSize: 50 }))).toMatchObject({ processed: 2000 });
        const [claim] = claims;
        const [{ 'QUERY PLAN': plan }] = (await query(`EXPLAIN (FORMAT JSON) ${claim!.sql}`, claim!.parameters)) as {
          'QUERY PLAN': unknown;
        }[];
        const text = JSON.stringify(plan);
        expect(text).not.toContain('"Node Type":"Seq Scan"');
        expect(text).toMatch(/"Index Name":"PK_[^"]*","Relation Name":"nestjs_workers"/);
        // The claim's commit skips its WAL flush through a setting local to its own transaction.
        expect(claim!.sql).toContain("set_config('synchronous_commit', 'off', true)");
        const settings = (await Promise.all(Array.from({ length: 5 }, () => query('SHOW synchronous_commit')))) as {
          synchronous_commit: string;
        }[][];
        expect(settings.map(([row]) => row!.synchronous_commit)).toEqual(Array(5).fill('on'));
      } finally {
        await t.close();
      }
    });
  },
);
