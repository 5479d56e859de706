/**
 * Flow control and leases on every database: an expired lease stays lost, even to a late heartbeat of
 * its holder, because a limited claim has freed its slot (the slots count live leases only).
 */
import { TypeOrmWorkerRepository } from '../lib/index.js';
import type { ClaimFlowLimits, ClaimFlowReport } from '../lib/interfaces/flow-control.interface.js';
import type { IWorkerModel } from '../lib/interfaces/worker-model.interface.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, execute, sleep, type TestApp } from './support/test-app.js';

const QUEUE = 'flow';

interface RowSpec {
  event?: string;
  key?: string | null;
  priority?: number;
}

async function databaseNow(repository: TypeOrmWorkerRepository): Promise<number> {
  return repository.currentTime();
}

async function insertRows(t: TestApp, now: number, rows: RowSpec[]): Promise<void> {
  for (let start = 0; start < rows.length; start += 100) {
    const chunk = rows.slice(start, start + 100);
    await execute(
      t.dataSource,
      'INSERT INTO nestjs_workers (queue_name, event_name, payload, attempts, retries, priority, available_at, ' +
        'created_at, updated_at, concurrency_key) VALUES ' +
        chunk.map(() => '(?, ?, ?, 0, 3, ?, ?, ?, ?, ?)').join(', '),
      chunk.flatMap((row, index) => [
        QUEUE,
        row.event ?? 'FlowEvent',
        '{}',
        row.priority ?? 0,
        now - 1000 + start + index,
        now,
        now,
        row.key ?? null,
      ]),
    );
  }
}

async function claim(
  repository: TypeOrmWorkerRepository,
  flow: ClaimFlowLimits,
  limit: number,
  leaseMs = 60_000,
): Promise<{ models: IWorkerModel[]; report: ClaimFlowReport | undefined }> {
  const request = {
    queueName: QUEUE,
    limit,
    workerId: 'w',
    leaseMs,
    dueBy: new Date(await repository.currentTime()),
    flow,
    flowReport: undefined as ClaimFlowReport | undefined,
  };
  const models = await repository.claimWorkers(request);
  return { models, report: request.flowReport };
}

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
      const now = await databaseNow(repository);
      await insertRows(t, now, [{ priority: 5 }]);
      // Worker A holds J1 on a short lease; its heartbeat is late (event loop blocked, DB blip).
      const [j1] = (await claim(repository, flow, 1, 200)).models;
      expect(j1).toBeDefined();
      await insertRows(t, now, [{ priority: 0 }]);
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
