/**
 * Flow control and leases on every database: an expired lease stays lost, even to a late heartbeat of
 * its holder, because a limited claim has freed its slot (the slots count live leases only).
 */
import { TypeOrmWorkerRepository } from '../lib/index.js';
import type { ClaimFlowLimits } from '../lib/interfaces/flow-control.interface.js';
import { testDatabases } from './support/databases.js';
import { claimFlow as claim, FLOW_QUEUE, insertFlowRows as insertRows } from './support/flow-claims.js';
import { createTestApp, execute, sleep, type TestApp } from './support/test-app.js';

const QUEUE = FLOW_QUEUE;

async function liveLeases(t: TestApp, repository: TypeOrmWorkerRepository): Promise<number> {
  const now = await repository.currentTime();
  const rows = (await execute(
    t.dataSource,
    'SELECT id FROM nestjs_workers WHERE queue_name = ? AND lease_token IS NOT NULL AND lease_expires_at > ?',
    [QUEUE, now],
  )) as unknown[];
  return rows.length;
}

for (const database of testDatabases()) {
  describe(`Flow-control leases (${database.name})`, () => {
    let t: TestApp;

    beforeEach(async () => {
      t = await createTestApp({}, {}, database);
    });

    afterEach(async () => {
      await t.close();
    });

    it('a late heartbeat does not revive a lease whose slot a claim deleted (globalConcurrency 1)', async () => {
      const repository = new TypeOrmWorkerRepository(t.dataSource);
      const flow: ClaimFlowLimits = { globalConcurrency: 1, startGraceMs: 50 };
      const now = await repository.currentTime();
      await insertRows(t, [{ priority: 5 }], now);
      // Worker A holds J1 on a short lease; its heartbeat is late (event loop blocked, DB blip).
      const [j1] = (await claim(repository, flow, 1, { leaseMs: 200 })).models;
      expect(j1).toBeDefined();
      await insertRows(t, [{ priority: 0 }], now);
      await sleep(300);
      // Worker B: J1's slot is dead and deleted, capacity 1 goes to J2 (first in claim order).
      const [j2] = (await claim(repository, flow, 1)).models;
      expect(j2).toBeDefined();
      // A's heartbeat finally lands: fenced by the token only, it renews J1, which nobody took.
      const renewal = await repository.renewLeases([j1!], 60_000);
      // J1 still runs in A (not told its lease is lost) and J2 runs in B: 2 > globalConcurrency 1.
      expect(await liveLeases(t, repository)).toBe(1);
      expect(renewal && !Array.isArray(renewal) ? renewal.lost : []).toEqual([String(j1!.getWorkerData()!.id)]);
    });
  });
}
