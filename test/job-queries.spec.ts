/**
 * Issue 16, points 1, 2, 7 (listWorkers), 8 (the series) and 9: WorkerJobsService reads jobs in every
 * state from rows written with raw SQL (pending rows waiting, delayed, running with a live lease,
 * with an expired lease, cancelled; history rows; failed rows with and without job_id), with every
 * filter, paging and totals, and refuses bad input with an error naming the field.
 */
import type { DataSource } from 'typeorm';
import {
  type FindJobsQuery,
  InvalidWorkerOptionsError,
  type JobRecord,
  type JobState,
  WorkerJobsService,
} from '../lib/index.js';
import { dialectFor } from '../lib/storage/dialects/dialect-for.js';
import { countJobsStatement, findJobsStatement } from '../lib/storage/sql/find-jobs.js';
import { workerTables } from '../lib/storage/worker-tables.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, execute, type TestApp } from './support/test-app.js';

const HOUR = 3_600_000;
const MINUTE = 60_000;
const LEASE_SECONDS = 30;

type Row = Record<string, string | number | null>;

function insert(dataSource: DataSource, table: string, row: Row): Promise<unknown> {
  const columns = Object.keys(row);
  return execute(
    dataSource,
    `INSERT INTO ${table} (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`,
    Object.values(row),
  );
}

/** The fields every job row has; `id` sets created_at too, so createdFrom/To can pick rows by id. */
function base(now: number, id: number, payload: unknown, overrides: Row = {}): Row {
  return {
    queue_name: 'jobs-a',
    event_name: 'MailEvent',
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    attempts: 0,
    retries: 3,
    priority: 0,
    unique_key: null,
    error: null,
    created_at: now - 10 * HOUR + id * 1000,
    updated_at: now - 10 * HOUR + id * 1000,
    ...overrides,
  };
}

function pending(now: number, id: number, payload: unknown, overrides: Row = {}): Row {
  return { id, available_at: now - HOUR, ...base(now, id, payload), ...overrides };
}

function history(now: number, id: number, payload: unknown, overrides: Row = {}): Row {
  return {
    id,
    state: 'completed',
    available_at: now - 5 * HOUR,
    started_at: now - 5 * HOUR + 100,
    finished_at: now - 5 * HOUR + 112,
    duration_ms: 12,
    worker_id: 'host-1:42:abc',
    ...base(now, id, payload),
    ...overrides,
  };
}

/** Ids of a page, newest first as listed. */
const ids = (items: JobRecord[]): string[] => items.map((item) => item.id);

describe.each(testDatabases())('job queries ($name)', (database) => {
  let t: TestApp;
  let jobs: WorkerJobsService;
  let now: number;

  beforeAll(async () => {
    t = await createTestApp({ leaseSeconds: LEASE_SECONDS }, {}, database);
    jobs = t.app.get(WorkerJobsService);
    now = Date.now();
    const ds = t.dataSource;
    // Pending rows of queue jobs-a, ids 1–5, one per state a pending row can be in.
    await insert(
      ds,
      'nestjs_workers',
      pending(now, 1, { user: 'u1', n: 1, flag: true, none: null }, { unique_key: 'k1' }),
    );
    await insert(
      ds,
      'nestjs_workers',
      pending(now, 2, { user: 'u2', n: '1', flag: 1, list: [1] }, { available_at: now + HOUR }),
    );
    await insert(
      ds,
      'nestjs_workers',
      pending(
        now,
        3,
        { user: 'u1', n: 1.5, 'a-b': 'x' },
        {
          attempts: 1,
          locked_by: 'host-1:42:abc',
          lease_token: 'live-token',
          lease_expires_at: now + HOUR,
          started_at: now - 1000,
          progress: JSON.stringify({ pct: 50 }),
        },
      ),
    );
    await insert(
      ds,
      'nestjs_workers',
      pending(
        now,
        4,
        { user: 'U1' },
        {
          event_name: 'OtherEvent',
          attempts: 2,
          error: 'Error: boom',
          locked_by: 'host-2:7:def',
          lease_token: 'dead-token',
          lease_expires_at: now - HOUR,
          available_at: now - 2 * HOUR,
        },
      ),
    );
    await insert(ds, 'nestjs_workers', pending(now, 5, { user: 'u1 ' }, { deleted_at: now - 3 * HOUR }));
    // History rows 6 (completed, with a result) and 7 (cancelled).
    await insert(
      ds,
      'nestjs_workers_history',
      history(now, 6, { user: 'u1', n: 1 }, { result: JSON.stringify({ ok: true }), progress: '100', attempts: 1 }),
    );
    await insert(
      ds,
      'nestjs_workers_history',
      history(now, 7, { user: 'u3' }, { state: 'cancelled', error: 'not needed', started_at: null, duration_ms: null }),
    );
    // A failed job (pending id 8, failed row 51) and a failed row kept before job ids were (row 50).
    await insert(ds, 'nestjs_failed_workers', {
      id: 51,
      ...base(now, 8, { user: 'u1', flag: false }, { event_name: 'OtherEvent', attempts: 3, error: 'Error: gave up' }),
      failed_at: now - 4 * HOUR,
      job_id: 8,
      available_at: now - 4 * HOUR - 500,
      started_at: now - 4 * HOUR - 400,
      duration_ms: 400,
      worker_id: 'host-2:7:def',
      progress: JSON.stringify([1, 2]),
    });
    await insert(ds, 'nestjs_failed_workers', {
      id: 50,
      ...base(now, 9, { user: 'u1' }, { attempts: 3, error: 'Error: old' }),
      failed_at: now - 4 * HOUR,
    });
    // Queue jobs-b: a row whose payload no longer parses.
    await insert(ds, 'nestjs_workers', pending(now, 10, 'not json {', { queue_name: 'jobs-b' }));
    // Queue jobs-c: a payload holding NUL, which dispatch stores escaped (PostgreSQL's jsonb would refuse it).
    await insert(ds, 'nestjs_workers', pending(now, 11, { user: 'nul\u0000byte' }, { queue_name: 'jobs-c' }));
    // Queue jobs-page: 25 history rows, ids 101–125.
    for (let id = 101; id <= 125; id++) {
      await insert(ds, 'nestjs_workers_history', history(now, id, { i: id }, { queue_name: 'jobs-page' }));
    }
  });

  afterAll(async () => {
    await t.close();
  });

  describe('getJob', () => {
    it('tells each pending row state on the database clock: waiting, delayed, running (live lease), waiting again (lease expired), cancelled', async () => {
      const states = await Promise.all([1, 2, 3, 4, 5].map(async (id) => (await jobs.getJob(String(id)))?.state));
      expect(states).toEqual(['waiting', 'delayed', 'running', 'waiting', 'cancelled']);
    });

    it('returns every field of a running job: parsed payload and progress, attempts, lease holder, start', async () => {
      expect(await jobs.getJob('3')).toEqual({
        id: '3',
        queueName: 'jobs-a',
        eventName: 'MailEvent',
        state: 'running',
        payload: { user: 'u1', n: 1.5, 'a-b': 'x' },
        attempts: 1,
        retries: 3,
        priority: 0,
        uniqueKey: null,
        progress: { pct: 50 },
        result: null,
        error: null,
        createdAt: new Date(now - 10 * HOUR + 3000),
        dueAt: new Date(now - HOUR),
        startedAt: new Date(now - 1000),
        finishedAt: null,
        durationMs: null,
        workerId: 'host-1:42:abc',
      });
    });

    it('gives a cancelled pending row the time it was cancelled, and a retrying one its last error', async () => {
      expect(await jobs.getJob(5)).toMatchObject({ state: 'cancelled', finishedAt: new Date(now - 3 * HOUR) });
      expect(await jobs.getJob(4)).toMatchObject({
        state: 'waiting',
        attempts: 2,
        error: 'Error: boom',
        finishedAt: null,
      });
    });

    it('reads completed and cancelled jobs from the history with their result, duration and worker', async () => {
      expect(await jobs.getJob('6')).toEqual({
        id: '6',
        queueName: 'jobs-a',
        eventName: 'MailEvent',
        state: 'completed',
        payload: { user: 'u1', n: 1 },
        attempts: 1,
        retries: 3,
        priority: 0,
        uniqueKey: null,
        progress: 100,
        result: { ok: true },
        error: null,
        createdAt: new Date(now - 10 * HOUR + 6000),
        dueAt: new Date(now - 5 * HOUR),
        startedAt: new Date(now - 5 * HOUR + 100),
        finishedAt: new Date(now - 5 * HOUR + 112),
        durationMs: 12,
        workerId: 'host-1:42:abc',
      });
      expect(await jobs.getJob('7')).toMatchObject({ state: 'cancelled', error: 'not needed', result: null });
    });

    it('finds a failed job by the id it had while pending (job_id), never by the failed row id', async () => {
      expect(await jobs.getJob('8')).toEqual({
        id: '8',
        queueName: 'jobs-a',
        eventName: 'OtherEvent',
        state: 'failed',
        payload: { user: 'u1', flag: false },
        attempts: 3,
        retries: 3,
        priority: 0,
        uniqueKey: null,
        progress: [1, 2],
        result: null,
        error: 'Error: gave up',
        createdAt: new Date(now - 10 * HOUR + 8000),
        dueAt: new Date(now - 4 * HOUR - 500),
        startedAt: new Date(now - 4 * HOUR - 400),
        finishedAt: new Date(now - 4 * HOUR),
        durationMs: 400,
        workerId: 'host-2:7:def',
      });
      // Rows 50 (no job_id) and 51 are failed-store ids, not job ids.
      expect(await jobs.getJob('50')).toBeUndefined();
      expect(await jobs.getJob('51')).toBeUndefined();
    });

    it('keeps a payload that no longer parses as its raw text', async () => {
      expect(await jobs.getJob('10')).toMatchObject({ state: 'waiting', payload: 'not json {' });
    });

    it('returns undefined for an unknown id, and refuses ids of the wrong type or format naming "id"', async () => {
      expect(await jobs.getJob('999999')).toBeUndefined();
      expect(await jobs.getJob('9223372036854775807')).toBeUndefined();
      for (const bad of ['abc', '', '0', '-1', '1.5', ' 1', '9223372036854775808', 1.5, -3, null, {}, ['1']]) {
        const error = await jobs.getJob(bad as string).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(InvalidWorkerOptionsError);
        expect((error as InvalidWorkerOptionsError).field).toBe('id');
      }
    });
  });

  describe('findJobs', () => {
    it('lists a queue newest first across pending, history and failed rows, with the total (no failed row without job_id)', async () => {
      const page = await jobs.findJobs({ queueName: 'jobs-a' });
      expect(ids(page.items)).toEqual(['8', '7', '6', '5', '4', '3', '2', '1']);
      expect(page).toMatchObject({ total: 8, page: 1, pageSize: 20 });
      expect(page.items[0]).toEqual(await jobs.getJob('8'));
    });

    it('filters by one state or several, reading only the tables they need', async () => {
      const byState = async (state: FindJobsQuery['state']) => {
        const page = await jobs.findJobs({ queueName: 'jobs-a', state });
        expect(page.total).toBe(page.items.length);
        return ids(page.items);
      };
      expect(await byState('running')).toEqual(['3']);
      expect(await byState('waiting')).toEqual(['4', '1']);
      expect(await byState('delayed')).toEqual(['2']);
      expect(await byState('cancelled')).toEqual(['7', '5']);
      expect(await byState('completed')).toEqual(['6']);
      expect(await byState('failed')).toEqual(['8']);
      expect(await byState(['completed', 'failed', 'running'])).toEqual(['8', '6', '3']);
      expect(await byState(['delayed', 'waiting', 'running', 'cancelled'])).toEqual(['7', '5', '4', '3', '2', '1']);
    });

    it('reads only the tables a state filter needs, in the page and in the count', () => {
      const tables = workerTables(t.dataSource);
      const dialect = dialectFor(t.dataSource);
      const read = (states?: JobState[]): string[][] =>
        [findJobsStatement(tables, dialect, { states }, 0, 20), countJobsStatement(tables, dialect, { states })].map(
          ({ sql }) => (['pending', 'history', 'failed'] as const).filter((source) => sql.includes(tables[source])),
        );
      expect(read(['completed'])).toEqual([['history'], ['history']]);
      expect(read(['failed'])).toEqual([['failed'], ['failed']]);
      expect(read(['running', 'delayed'])).toEqual([['pending'], ['pending']]);
      expect(read(['cancelled'])).toEqual([
        ['pending', 'history'],
        ['pending', 'history'],
      ]);
      expect(read()).toEqual([
        ['pending', 'history', 'failed'],
        ['pending', 'history', 'failed'],
      ]);
    });

    it('filters by event name, unique key and creation range', async () => {
      expect(ids((await jobs.findJobs({ eventName: 'OtherEvent' })).items)).toEqual(['8', '4']);
      expect(ids((await jobs.findJobs({ uniqueKey: 'k1' })).items)).toEqual(['1']);
      const range = await jobs.findJobs({
        queueName: 'jobs-a',
        createdFrom: new Date(now - 10 * HOUR + 3000),
        createdTo: new Date(now - 10 * HOUR + 6000),
      });
      expect(ids(range.items)).toEqual(['5', '4', '3']);
      expect(range.total).toBe(3);
      expect(ids((await jobs.findJobs({ queueName: 'nobody' })).items)).toEqual([]);
    });

    it('compares top-level payload fields with their JSON type: 1 ≠ "1", true ≠ 1, null only for an explicit null, strings exactly', async () => {
      const byPayload = async (payload: Record<string, string | number | boolean | null>) =>
        ids((await jobs.findJobs({ queueName: 'jobs-a', payload })).items);
      expect(await byPayload({ n: 1 })).toEqual(['6', '1']);
      expect(await byPayload({ n: '1' })).toEqual(['2']);
      expect(await byPayload({ n: 1.5 })).toEqual(['3']);
      expect(await byPayload({ flag: true })).toEqual(['1']);
      expect(await byPayload({ flag: 1 })).toEqual(['2']);
      expect(await byPayload({ flag: false })).toEqual(['8']);
      expect(await byPayload({ none: null })).toEqual(['1']);
      expect(await byPayload({ user: 'u1' })).toEqual(['8', '6', '3', '1']);
      expect(await byPayload({ user: 'U1' })).toEqual(['4']);
      expect(await byPayload({ user: 'u1 ' })).toEqual(['5']);
      expect(await byPayload({ user: 'u1', n: 1 })).toEqual(['6', '1']);
      expect(await byPayload({ 'a-b': 'x' })).toEqual(['3']);
      expect(await byPayload({ missing: null })).toEqual([]);
      // An array holding the value is not the value.
      expect(await byPayload({ list: 1 })).toEqual([]);
    });

    it('finds a payload holding NUL, and compares NUL in a filter value exactly', async () => {
      const byUser = async (user: string) =>
        ids((await jobs.findJobs({ queueName: 'jobs-c', payload: { user } })).items);
      expect(await byUser('nul\u0000byte')).toEqual(['11']);
      expect(await byUser('nul\u0000')).toEqual([]);
      expect(await byUser('nulbyte')).toEqual([]);
    });

    it('filters by payload over every queue, past a payload that no longer parses and one holding NUL', async () => {
      const page = await jobs.findJobs({ payload: { user: 'u1' } });
      expect({ ids: ids(page.items), total: page.total }).toEqual({ ids: ['8', '6', '3', '1'], total: 4 });
    });

    it('pages newest first with the total, and refuses a page beyond the last one naming "page"', async () => {
      const first = await jobs.findJobs({ queueName: 'jobs-page', pageSize: 10 });
      expect(ids(first.items)).toEqual(['125', '124', '123', '122', '121', '120', '119', '118', '117', '116']);
      const third = await jobs.findJobs({ queueName: 'jobs-page', pageSize: 10, page: 3 });
      expect(ids(third.items)).toEqual(['105', '104', '103', '102', '101']);
      expect(third).toMatchObject({ total: 25, page: 3, pageSize: 10 });
      const filtered = await jobs.findJobs({ queueName: 'jobs-page', pageSize: 7, payload: { i: 111 } });
      expect(ids(filtered.items)).toEqual(['111']);
      expect(filtered.total).toBe(1);
      const error = await jobs.findJobs({ queueName: 'jobs-page', pageSize: 10, page: 4 }).catch((caught) => caught);
      expect(error).toBeInstanceOf(InvalidWorkerOptionsError);
      expect(error).toMatchObject({ field: 'page' });
      expect((error as Error).message).toContain('beyond the last page, 3 (25 jobs match)');
      // No job matches: any page is an empty one.
      expect(await jobs.findJobs({ queueName: 'nobody', page: 9 })).toEqual({
        items: [],
        total: 0,
        page: 9,
        pageSize: 20,
      });
    });

    it('refuses bad filters with an InvalidWorkerOptionsError naming the field', async () => {
      const cases: [unknown, string][] = [
        [{ queue: 'jobs-a' }, 'queue'],
        [{ state: 'done' }, 'state'],
        [{ state: [] }, 'state'],
        [{ state: ['waiting', 'finished'] }, 'state'],
        [{ page: 0 }, 'page'],
        [{ page: 1.5 }, 'page'],
        [{ page: '2' }, 'page'],
        [{ pageSize: 0 }, 'pageSize'],
        [{ pageSize: 501 }, 'pageSize'],
        [{ pageSize: 2.5 }, 'pageSize'],
        [{ createdFrom: '2026-01-01' }, 'createdFrom'],
        [{ createdFrom: Date.now() }, 'createdFrom'],
        [{ createdTo: new Date(Number.NaN) }, 'createdTo'],
        [{ payload: { 'a.b': 1 } }, 'payload'],
        [{ payload: { "x'y": 1 } }, 'payload'],
        [{ payload: { ['k'.repeat(65)]: 1 } }, 'payload'],
        [{ payload: { x: { y: 1 } } }, 'payload.x'],
        [{ payload: { x: [1] } }, 'payload.x'],
        [{ payload: { x: Number.NaN } }, 'payload.x'],
        [{ payload: { x: undefined } }, 'payload.x'],
        [{ payload: { x: 'a\ud800' } }, 'payload.x'],
        [{ payload: 'user=u1' }, 'payload'],
        [{ payload: Object.fromEntries(Array.from({ length: 21 }, (_, n) => [`k${n}`, n])) }, 'payload'],
        [{ createdFrom: new Date(2000), createdTo: new Date(1000) }, 'createdTo'],
        [{ createdFrom: new Date(1000), createdTo: new Date(1000) }, 'createdTo'],
        [{ queueName: '' }, 'queueName'],
        [{ queueName: 'q'.repeat(256) }, 'queueName'],
        [{ eventName: 7 }, 'eventName'],
        [{ uniqueKey: 'a\u0000b' }, 'uniqueKey'],
        ['jobs-a', 'findJobs query'],
      ];
      for (const [query, field] of cases) {
        const error = await jobs.findJobs(query as never).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(InvalidWorkerOptionsError);
        expect({ query, field: (error as InvalidWorkerOptionsError).field }).toEqual({ query, field });
      }
      // The longest key and page size allowed are accepted.
      expect(
        (await jobs.findJobs({ queueName: 'jobs-a', payload: { ['k'.repeat(64)]: 1 }, pageSize: 500 })).total,
      ).toBe(0);
    });
  });

  describe('listWorkers', () => {
    it('lists the processes whose heartbeat is within a lease of the database now, with their queues', async () => {
      const process = (id: string, heartbeatAt: number) => ({
        id,
        host: 'host-1',
        pid: 42,
        queues: JSON.stringify(['jobs-a', 'jobs-b']),
        concurrency: 4,
        running: 2,
        started_at: now - HOUR,
        heartbeat_at: heartbeatAt,
      });
      await insert(t.dataSource, 'nestjs_workers_processes', process('host-1:42:live', Date.now()));
      await insert(
        t.dataSource,
        'nestjs_workers_processes',
        process('host-1:43:gone', Date.now() - 2 * LEASE_SECONDS * 1000),
      );
      expect(await jobs.listWorkers()).toEqual([
        {
          id: 'host-1:42:live',
          host: 'host-1',
          pid: 42,
          queues: ['jobs-a', 'jobs-b'],
          concurrency: 4,
          running: 2,
          startedAt: new Date(now - HOUR),
          lastHeartbeatAt: expect.any(Date),
        },
      ]);
    });
  });

  describe('getThroughput', () => {
    it('returns the minutes of [from, to) per queue and event, ordered by minute; the last hour by default', async () => {
      const thisMinute = Math.floor(Date.now() / MINUTE) * MINUTE;
      const minute = (queue: string, event: string, at: number, completed: number) => ({
        queue_name: queue,
        minute: at,
        event_name: event,
        completed,
        failed: 1,
        retried: 2,
        cancelled: 3,
        snoozed: 4,
        duration_ms: completed * 10,
      });
      for (const row of [
        minute('jobs-a', 'MailEvent', thisMinute, 5),
        minute('jobs-a', 'MailEvent', thisMinute - 2 * MINUTE, 6),
        minute('jobs-a', 'OtherEvent', thisMinute - 2 * MINUTE, 7),
        minute('jobs-b', 'MailEvent', thisMinute - MINUTE, 8),
        minute('jobs-a', 'MailEvent', thisMinute - 2 * HOUR, 9),
      ]) {
        await insert(t.dataSource, 'nestjs_workers_throughput', row);
      }
      const series = await jobs.getThroughput();
      expect(
        series.map((point) => [point.minute.getTime(), point.queueName, point.eventName, point.completed]),
      ).toEqual([
        [thisMinute - 2 * MINUTE, 'jobs-a', 'MailEvent', 6],
        [thisMinute - 2 * MINUTE, 'jobs-a', 'OtherEvent', 7],
        [thisMinute - MINUTE, 'jobs-b', 'MailEvent', 8],
        [thisMinute, 'jobs-a', 'MailEvent', 5],
      ]);
      expect(series[0]).toEqual({
        minute: new Date(thisMinute - 2 * MINUTE),
        queueName: 'jobs-a',
        eventName: 'MailEvent',
        completed: 6,
        failed: 1,
        retried: 2,
        cancelled: 3,
        snoozed: 4,
        totalDurationMs: 60,
      });
      // `from` inside a minute takes that minute; `to` excludes the minute starting at it.
      const window = await jobs.getThroughput({
        queueName: 'jobs-a',
        eventName: 'MailEvent',
        from: new Date(thisMinute - 2 * HOUR + 30_000),
        to: new Date(thisMinute),
      });
      expect(window.map((point) => point.completed)).toEqual([9, 6]);
    });

    it('refuses bad queries naming the field', async () => {
      const from = new Date();
      const cases: [unknown, string][] = [
        [{ since: from }, 'since'],
        [{ from: 'yesterday' }, 'from'],
        [{ to: new Date(Number.NaN) }, 'to'],
        [{ from, to: from }, 'to'],
        [{ queueName: '' }, 'queueName'],
        [{ eventName: 'e'.repeat(256) }, 'eventName'],
      ];
      for (const [query, field] of cases) {
        const error = await jobs.getThroughput(query as never).catch((caught: unknown) => caught);
        expect(error).toBeInstanceOf(InvalidWorkerOptionsError);
        expect({ query, field: (error as InvalidWorkerOptionsError).field }).toEqual({ query, field });
      }
    });
  });
});
