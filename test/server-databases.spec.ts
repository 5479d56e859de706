/**
 * What only a server database can show. Issue 3, point 4: "due rows of queue Q, oldest first" is an
 * index scan of IDX_nestjs_workers_due with no sort step, so a claim touches (and locks) only the
 * rows it takes. Point 3: a row dispatched in an open transaction stays invisible to workers, which
 * claim on other pooled connections, until the transaction commits.
 */
import { BaseEvent, QueueEvent } from '../lib/index.js';
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
  it('reads due rows of one queue by priority, then oldest first, through the due index, without sorting', async () => {
    const t = await createTestApp({ events: [PlanEvent, OtherPlanEvent] }, {}, database);
    try {
      const rows = Array.from({ length: 3000 }, (_, n) => n);
      for (const n of rows) {
        await t.events.dispatch(n % 3 === 0 ? new PlanEvent({ n }) : new OtherPlanEvent({ n }), { priority: n % 5 === 0 ? -1 : 0 });
      }
      const due = Date.now();
      if (database.type === 'postgres') {
        await t.dataSource.query('ANALYZE nestjs_workers');
        const [{ 'QUERY PLAN': plan }] = (await t.dataSource.query(
          'EXPLAIN (FORMAT JSON) SELECT id FROM nestjs_workers WHERE queue_name = $1 AND available_at <= $2 AND deleted_at IS NULL ' +
            'ORDER BY priority, available_at, id LIMIT 10 FOR UPDATE SKIP LOCKED',
          ['plan-a', due],
        )) as { 'QUERY PLAN': unknown }[];
        const text = JSON.stringify(plan);
        expect(text).toContain('"Index Name":"IDX_nestjs_workers_due"');
        expect(text).not.toContain('"Node Type":"Sort"');
        expect(text).not.toContain('"Node Type":"Seq Scan"');
      } else {
        await t.dataSource.query('ANALYZE TABLE nestjs_workers');
        const [step] = (await t.dataSource.query(
          'EXPLAIN SELECT * FROM nestjs_workers FORCE INDEX (IDX_nestjs_workers_due) WHERE queue_name = ? AND available_at <= ? ' +
            'AND deleted_at IS NULL ORDER BY priority, available_at, id LIMIT 10 FOR UPDATE SKIP LOCKED',
          ['plan-a', due],
        )) as { key: string; type: string; Extra: string | null }[];
        // 'ref' on queue_name (then priority order) or 'range': either way an index walk in claim order.
        expect(step).toMatchObject({ key: 'IDX_nestjs_workers_due' });
        expect(['ref', 'range']).toContain(step!.type);
        expect(step!.Extra ?? '').not.toContain('filesort');
      }
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
