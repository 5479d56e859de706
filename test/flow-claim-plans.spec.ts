/**
 * The limited claim's reads are index scans on every database: the candidates walk the claim-order
 * index IDX_nestjs_workers_claim in its order (no sort, no table scan) with the full and spent keys (subqueries)
 * and the rows already read left out, the slots are one range of their queue index, and a limiter's starts in its
 * window one range of the starts index.
 */
import type { DataSource } from 'typeorm';
import { dialectFor } from '../lib/storage/dialects/dialect-for.js';
import { candidatesStatement } from '../lib/storage/sql/limited-claim.js';
import { startsPerBucketStatement } from '../lib/storage/sql/rate-starts.js';
import { slotsStatement } from '../lib/storage/sql/slots.js';
import type { SqlStatement } from '../lib/storage/sql/statement.js';
import { workerTables } from '../lib/storage/worker-tables.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, execute, type TestApp } from './support/test-app.js';

/** 3,000 rows of the limited queue over 100 keys (a third without a key), 2,000 of another queue. */
async function seed(t: TestApp): Promise<void> {
  const now = Date.now();
  for (const [queue, count] of [
    ['limited', 3000],
    ['other', 2000],
  ] as const) {
    for (let start = 0; start < count; start += 500) {
      const rows = Array.from({ length: 500 }, (_, index) => start + index);
      await execute(
        t.dataSource,
        'INSERT INTO nestjs_workers (queue_name, event_name, payload, attempts, retries, priority, available_at, ' +
          'created_at, updated_at, concurrency_key) VALUES ' +
          rows.map(() => '(?, ?, ?, 0, 3, ?, ?, ?, ?, ?)').join(', '),
        rows.flatMap((n) => [queue, 'E', '{}', n % 3, now - 10_000 + n, now, now, n % 3 === 0 ? null : `k${n % 100}`]),
      );
    }
  }
  const type = t.dataSource.options.type;
  await t.dataSource.query(
    type === 'postgres' ? 'ANALYZE' : type === 'better-sqlite3' ? 'ANALYZE' : 'ANALYZE TABLE nestjs_workers',
  );
}

/** The plan of `statement` as text (PostgreSQL JSON, MariaDB rows, SQLite details), through the dialect's spelling. */
async function planOf(dataSource: DataSource, statement: SqlStatement): Promise<string> {
  const dialect = dialectFor(dataSource);
  const type = dataSource.options.type;
  const prefix =
    type === 'postgres' ? 'EXPLAIN (FORMAT JSON) ' : type === 'better-sqlite3' ? 'EXPLAIN QUERY PLAN ' : 'EXPLAIN ';
  const rows = await dialect.query({ sql: prefix + statement.sql, parameters: statement.parameters });
  return JSON.stringify(rows);
}

for (const database of testDatabases()) {
  describe(`limited claim query plans (${database.name})`, () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await createTestApp({}, {}, database);
      await seed(t);
    });

    afterAll(async () => {
      await t.close();
    });

    it('reads the candidates through the claim-order index, in its order, leaving out full and spent keys and read rows', async () => {
      const dialect = dialectFor(t.dataSource);
      const now = Date.now() + 60_000;
      const statement = candidatesStatement(workerTables(t.dataSource).pending, dialect, {
        queueName: 'limited',
        dueBy: now,
        now,
        excludedKeys: ['k1', 'k2', 'k7'],
        keyLimits: { slots: workerTables(t.dataSource).slots, groups: [{ limit: 1, events: ['E'], others: true }] },
        keyRate: { rateStarts: workerTables(t.dataSource).rateStarts, name: 'queue:limited', since: 0, limit: 1 },
        after: { priority: 0, availableAt: 0, id: 3 },
        window: 100,
        lock: true,
      });
      const plan = await planOf(t.dataSource, statement);
      if (database.type === 'postgres') {
        expect(plan).toContain('"Index Name":"IDX_nestjs_workers_claim"');
        expect(plan).not.toContain('"Node Type":"Sort"');
        // The subqueries of the slots and the starts may read their (small, here empty) tables whole.
        expect(plan).not.toMatch(/"Node Type":"Seq Scan"[^{}]*"Relation Name":"nestjs_workers"/);
        expect(plan).toContain('"Node Type":"LockRows"');
      } else if (database.type === 'better-sqlite3') {
        expect(plan).toContain('SEARCH nestjs_workers USING INDEX IDX_nestjs_workers_claim (queue_name=?)');
        // (The starts subquery groups its buckets in a temporary B-tree: once per statement.)
        expect(plan).not.toContain('TEMP B-TREE FOR ORDER BY');
      } else {
        const [step] = JSON.parse(plan) as { key: string; type: string; Extra: string | null }[];
        expect(step).toMatchObject({ key: 'IDX_nestjs_workers_claim' });
        expect(['ref', 'range']).toContain(step!.type);
        expect(step!.Extra ?? '').not.toContain('filesort');
      }
      // And it returns the rows in claim order: priority first, then due time.
      const rows = await dialect.query(statement);
      expect(rows).toHaveLength(100);
      const priorities = rows.map((row) => Number(row.priority));
      expect(priorities).toEqual([...priorities].sort((a, b) => a - b));
      expect(rows.map((row) => row.concurrency_key)).not.toContain('k1');
    });

    it('reads the slots of a queue through their queue index, each live check a primary-key probe', async () => {
      const plan = await planOf(t.dataSource, slotsStatement(workerTables(t.dataSource), 'limited', Date.now()));
      if (database.type === 'postgres') {
        // An empty slots table may be read whole; each slot's pending row is found by its primary key.
        expect(plan).toMatch(/"Node Type":"Index Scan"[^{}]*"Relation Name":"nestjs_workers","Alias":"p"/);
        expect(plan).toContain('"Index Cond":"(id = s.job_id)"');
      } else if (database.type === 'better-sqlite3') {
        expect(plan).toContain('IDX_nestjs_workers_slots_queue');
        expect(plan).toMatch(/SEARCH p USING INTEGER PRIMARY KEY/);
      } else {
        const steps = JSON.parse(plan) as { table: string; key: string | null }[];
        expect(steps.find((step) => step.table === 'p')).toMatchObject({ key: 'PRIMARY' });
      }
    });

    it("counts a limiter's starts in the window with one range of a starts index (per key: of the key index)", async () => {
      const { rateStarts } = workerTables(t.dataSource);
      const now = Date.now();
      const rows = Array.from({ length: 2000 }, (_, n) => n);
      await execute(
        t.dataSource,
        `INSERT INTO ${rateStarts} (name, bucket_key, started_at) VALUES ${rows.map(() => '(?, ?, ?)').join(', ')}`,
        rows.flatMap((n) => [
          n % 2 === 0 ? 'stripe' : 'other',
          n % 3 === 0 ? '' : `acct_${n % 10}`,
          now - 120_000 + n * 60,
        ]),
      );
      const type = t.dataSource.options.type;
      await t.dataSource.query(type === 'mariadb' ? `ANALYZE TABLE ${rateStarts}` : 'ANALYZE');
      // A whole limiter's window: a range of (name, started_at, …); some keys' starts: a range per key
      // of (name, bucket_key, started_at).
      for (const [buckets, index] of [
        [undefined, 'IDX_nestjs_workers_rate_starts'],
        [[''], 'IDX_nestjs_workers_rate_starts_key'],
      ] as const) {
        const plan = await planOf(
          t.dataSource,
          startsPerBucketStatement(rateStarts, 'stripe', now - 1000, buckets && [...buckets]),
        );
        if (database.type === 'postgres') {
          expect(plan).toContain(`"Index Name":"${index}"`);
          expect(plan).toContain('started_at > ');
          expect(plan).not.toContain('"Seq Scan"');
        } else if (database.type === 'better-sqlite3') {
          expect(plan).toContain(`USING COVERING INDEX ${index} (name=? AND `);
          expect(plan).toContain('started_at>?)');
        } else {
          const [step] = JSON.parse(plan) as { key: string; type: string }[];
          expect(step).toMatchObject({ key: index, type: 'range' });
        }
      }
    });
  });
}
