/**
 * What becomes of an attempt, on every database: results kept in the history (keepCompleted per
 * queue, per event class, per run), results that cannot be kept, cancelled events recorded, a lost
 * lease fencing the move, UnrecoverableError, this.snooze(seconds), the failed copy's job columns,
 * and the per-minute throughput written with one upsert per batch.
 */
import { Registry } from 'prom-client';
import type { DataSource, Logger as TypeOrmLogger } from 'typeorm';
import { BaseEvent, QueueEvent, UnrecoverableError, type WorkerLifecycleEvent, WorkerLifecycle } from '../lib/index.js';
import { WorkerMetricsModule } from '../lib/metrics/index.js';
import { normalizeRow, testDatabases } from './support/databases.js';
import {
  createPeerApp,
  createTestApp,
  execute,
  failedRows,
  pendingRows,
  RecordingLogger,
  runOncePass,
  type TestApp,
  waitFor,
} from './support/test-app.js';

const MAX_PAYLOAD_BYTES = 2000;

@QueueEvent('kept')
class ResultEvent extends BaseEvent<{ n: number }, { doubled: number }> {
  execute(): { doubled: number } {
    return { doubled: this.getPayload().n * 2 };
  }
}

@QueueEvent('kept')
class NoResultEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

@QueueEvent('kept')
class FunctionResultEvent extends BaseEvent<null, { f: () => number }> {
  async execute(): Promise<{ f: () => number }> {
    return { f: () => 1 };
  }
}

@QueueEvent('kept')
class LargeResultEvent extends BaseEvent<null, string> {
  async execute(): Promise<string> {
    return 'x'.repeat(MAX_PAYLOAD_BYTES + 1);
  }
}

/** An event class that keeps nothing, on a queue that keeps everything: the class wins. */
@QueueEvent('kept', { keepCompleted: false })
class UnkeptEvent extends BaseEvent<null, string> {
  async execute(): Promise<string> {
    return 'not kept';
  }
}

@QueueEvent('plain')
class PlainEvent extends BaseEvent<null, string> {
  async execute(): Promise<string> {
    return 'plain';
  }
}

/** An event class that keeps its completions, on a queue that keeps nothing. */
@QueueEvent('plain', { keepCompleted: { maxCount: 10 } })
class ClassKeptEvent extends BaseEvent<null, string> {
  async execute(): Promise<string> {
    return 'done';
  }
}

@QueueEvent('kept')
class WaitForCancelEvent extends BaseEvent<null> {
  static started = false;
  async execute(signal?: AbortSignal): Promise<void> {
    WaitForCancelEvent.started = true;
    await new Promise<void>((_, reject) => signal?.addEventListener('abort', () => reject(signal.reason)));
  }
}

/** Another worker takes the row while it runs (as after an expired lease): its completion is fenced out. */
@QueueEvent('kept')
class LeaseStolenEvent extends BaseEvent<null> {
  static dataSource: DataSource;
  async execute(): Promise<string> {
    await execute(LeaseStolenEvent.dataSource, 'UPDATE nestjs_workers SET lease_token = ?, locked_by = ?', [
      'someone-else',
      'other-worker',
    ]);
    return 'too late';
  }
}

/**
 * Runs until the test lets it go, then succeeds or fails: meanwhile another process cancels it, and
 * this worker's heartbeat has not told it yet.
 */
@QueueEvent('kept')
class CancelledElsewhereEvent extends BaseEvent<{ fail: boolean }> {
  static started = false;
  static release: () => void = () => undefined;
  async execute(): Promise<string> {
    CancelledElsewhereEvent.started = true;
    await new Promise<void>((resolve) => (CancelledElsewhereEvent.release = resolve));
    if (this.getPayload().fail) throw new Error('failed after the cancel');
    return 'finished after the cancel';
  }
}

/** Its progress as the heartbeat would have written it while it ran. */
@QueueEvent('kept')
class ProgressEvent extends BaseEvent<null> {
  static dataSource: DataSource;
  async execute(): Promise<void> {
    await execute(ProgressEvent.dataSource, 'UPDATE nestjs_workers SET progress = ?', ['{"percent":50}']);
  }
}

type MixedRole = 'result' | 'none' | 'cancelled' | 'stolen';

/**
 * One row of a batch whose rows end differently: it returns a result or none, or, while the batch
 * runs, its row is cancelled (deleted_at set, as cancel() does) or leased to another worker.
 */
@QueueEvent('kept')
class MixedRowEvent extends BaseEvent<{ role: MixedRole }, string | undefined> {
  static dataSource: DataSource;
  static ids = new Map<MixedRole, string>();
  async execute(): Promise<string | undefined> {
    const { role } = this.getPayload();
    const id = MixedRowEvent.ids.get(role);
    if (role === 'cancelled') {
      await execute(MixedRowEvent.dataSource, 'UPDATE nestjs_workers SET deleted_at = ? WHERE id = ?', [
        Date.now(),
        id,
      ]);
    } else if (role === 'stolen') {
      await execute(MixedRowEvent.dataSource, 'UPDATE nestjs_workers SET lease_token = ?, locked_by = ? WHERE id = ?', [
        'someone-else',
        'other-worker',
        id,
      ]);
    }
    return role === 'none' ? undefined : `${role} done`;
  }
}

@QueueEvent('mixed')
class OkEvent extends BaseEvent<{ n: number }, number> {
  async execute(): Promise<number> {
    return this.getPayload().n;
  }
}

@QueueEvent('mixed')
class FlakyEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    throw new Error('flaky');
  }
}

@QueueEvent('mixed')
class GiveUpEvent extends BaseEvent<null> {
  async execute(): Promise<void> {
    throw new UnrecoverableError('the account is gone');
  }
}

/** Snoozes on its first run, completes on the next. */
@QueueEvent('mixed')
class SnoozeOnceEvent extends BaseEvent<{ seconds: number }, string> {
  static runs = 0;
  async execute() {
    SnoozeOnceEvent.runs++;
    if (SnoozeOnceEvent.runs === 1) return this.snooze(this.getPayload().seconds);
    return 'woke up';
  }
}

@QueueEvent('mixed')
class BadSnoozeEvent extends BaseEvent<null> {
  async execute() {
    return this.snooze(-1);
  }
}

const EVENTS = [
  ResultEvent,
  NoResultEvent,
  FunctionResultEvent,
  LargeResultEvent,
  UnkeptEvent,
  PlainEvent,
  ClassKeptEvent,
  WaitForCancelEvent,
  LeaseStolenEvent,
  CancelledElsewhereEvent,
  ProgressEvent,
  MixedRowEvent,
  OkEvent,
  FlakyEvent,
  GiveUpEvent,
  SnoozeOnceEvent,
  BadSnoozeEvent,
];

/** Counts the statements TypeORM runs that match `pattern`, through the DataSource's query logger. */
function countStatements(dataSource: DataSource, pattern: RegExp): { count: number; stop(): void } {
  const original = dataSource.logger;
  const counter = {
    count: 0,
    stop: () => Object.assign(dataSource, { logger: original }),
  };
  const logger: TypeOrmLogger = {
    logQuery: (query) => void (pattern.test(query) && counter.count++),
    logQueryError: (...args) => original.logQueryError(...args),
    logQuerySlow: () => undefined,
    logSchemaBuild: () => undefined,
    logMigration: () => undefined,
    log: () => undefined,
  };
  Object.assign(dataSource, { logger });
  return counter;
}

/**
 * The statements run that match `pattern`, with their parameters: through TypeORM's query logger, and
 * on SQLite (whose transactions run on better-sqlite3 directly) as prepared (text only).
 */
function recordStatements(
  dataSource: DataSource,
  pattern: RegExp,
): { statements: { sql: string; parameters: unknown[] }[]; stop(): void } {
  const original = dataSource.logger;
  const statements: { sql: string; parameters: unknown[] }[] = [];
  const record = (sql: string, parameters: unknown[] = []): void =>
    void (pattern.test(sql) && statements.push({ sql, parameters }));
  const logger: TypeOrmLogger = {
    logQuery: (sql, parameters) => record(sql, Array.isArray(parameters) ? parameters : []),
    logQueryError: (...args) => original.logQueryError(...args),
    logQuerySlow: () => undefined,
    logSchemaBuild: () => undefined,
    logMigration: () => undefined,
    log: () => undefined,
  };
  Object.assign(dataSource, { logger });
  const connection =
    dataSource.driver.options.type === 'better-sqlite3'
      ? (dataSource.driver as unknown as { databaseConnection: { prepare(sql: string): unknown } }).databaseConnection
      : undefined;
  const prepare = connection?.prepare;
  if (connection && prepare) {
    connection.prepare = (sql: string) => {
      record(sql);
      return prepare.call(connection, sql);
    };
  }
  return {
    statements,
    stop: () => {
      Object.assign(dataSource, { logger: original });
      if (connection && prepare) connection.prepare = prepare;
    },
  };
}

describe.each(testDatabases())('job outcomes ($name)', (database) => {
  let t: TestApp;
  let logger: RecordingLogger;
  let announced: WorkerLifecycleEvent[];
  let registry: Registry;

  /** The value of a counter of the metrics module for one event name (0 when never counted). */
  async function counted(metric: string, eventName: string): Promise<number> {
    const values = (await registry.getSingleMetric(`nestjs_workers_${metric}`)!.get()).values;
    return values.find((value) => value.labels.event === eventName)?.value ?? 0;
  }

  beforeEach(async () => {
    logger = new RecordingLogger();
    announced = [];
    WaitForCancelEvent.started = false;
    SnoozeOnceEvent.runs = 0;
    registry = new Registry();
    t = await createTestApp(
      {
        events: EVENTS,
        logger,
        maxPayloadBytes: MAX_PAYLOAD_BYTES,
        queues: { kept: { keepCompleted: true }, plain: {}, mixed: {} },
      },
      { imports: [WorkerMetricsModule.register({ registry })] },
      database,
    );
    LeaseStolenEvent.dataSource = t.dataSource;
    ProgressEvent.dataSource = t.dataSource;
    MixedRowEvent.dataSource = t.dataSource;
    MixedRowEvent.ids = new Map();
    CancelledElsewhereEvent.started = false;
    t.app.get(WorkerLifecycle).subscribe((event) => void announced.push(event));
  });

  afterEach(async () => {
    await t.close();
  });

  async function historyRows(): Promise<Record<string, unknown>[]> {
    const rows = (await t.dataSource.query('SELECT * FROM nestjs_workers_history ORDER BY id')) as Record<
      string,
      unknown
    >[];
    return rows.map(normalizeRow);
  }

  /** The throughput rows, counters as numbers, by event name then minute. */
  async function throughputRows(): Promise<Record<string, number | string>[]> {
    const rows = (await t.dataSource.query(
      'SELECT * FROM nestjs_workers_throughput ORDER BY event_name, minute',
    )) as Record<string, unknown>[];
    return rows.map((row) => ({
      queue_name: String(row.queue_name),
      event_name: String(row.event_name),
      minute: Number(row.minute),
      completed: Number(row.completed),
      failed: Number(row.failed),
      retried: Number(row.retried),
      cancelled: Number(row.cancelled),
      snoozed: Number(row.snoozed),
      duration_ms: Number(row.duration_ms),
    }));
  }

  /** Counters summed per event name over every minute (a run may cross a minute boundary). */
  async function throughputTotals(): Promise<Record<string, Record<string, number>>> {
    const totals: Record<string, Record<string, number>> = {};
    for (const row of await throughputRows()) {
      const total = (totals[String(row.event_name)] ??= {
        completed: 0,
        failed: 0,
        retried: 0,
        cancelled: 0,
        snoozed: 0,
      });
      for (const counter of ['completed', 'failed', 'retried', 'cancelled', 'snoozed'])
        total[counter]! += Number(row[counter]);
    }
    return totals;
  }

  it('keeps the results of a keepCompleted queue in the history row, moved under the job id with its timing and worker', async () => {
    const before = Date.now();
    const resultId = await t.events.dispatch(new ResultEvent({ n: 21 }));
    const noResultId = await t.events.dispatch(new NoResultEvent(null));
    const result = await t.workers.runWorker(runOncePass('kept'));
    expect(result).toMatchObject({ processed: 2, failed: 0, retried: 0, cancelled: 0 });
    expect(await pendingRows(t.dataSource)).toEqual([]);
    const rows = await historyRows();
    expect(rows.map((row) => [String(row.id), row.event_name, row.state, row.result, row.error])).toEqual([
      [String(resultId), 'ResultEvent', 'completed', '{"doubled":42}', null],
      [String(noResultId), 'NoResultEvent', 'completed', null, null],
    ]);
    for (const row of rows) {
      expect(row).toMatchObject({ queue_name: 'kept', attempts: 1, worker_id: t.workers.workerId });
      // started_at is the claim's, on the database clock: within the test's span, before finished_at.
      expect(row.started_at).toEqual(expect.any(Number));
      expect(row.started_at as number).toBeGreaterThanOrEqual(before - 1000);
      expect(row.finished_at as number).toBeGreaterThanOrEqual(row.started_at as number);
      expect(row.finished_at as number).toBeLessThanOrEqual(Date.now() + 1000);
      expect(row.duration_ms as number).toBeGreaterThanOrEqual(0);
      expect(row.available_at as number).toBeLessThanOrEqual(row.started_at as number);
    }
    expect(JSON.parse(String(rows[0]!.payload))).toEqual({ n: 21 });
  });

  it('moves a batch of more rows than one history INSERT takes, each with its own result', async () => {
    const count = 1200;
    await t.events.dispatchMany(Array.from({ length: count }, (_, n) => new ResultEvent({ n })));
    const result = await t.workers.runWorker(runOncePass('kept', { batchSize: count, concurrency: 50 }));
    expect(result).toMatchObject({ processed: count, failed: 0, retried: 0 });
    expect(await pendingRows(t.dataSource)).toEqual([]);
    const rows = await historyRows();
    expect(rows).toHaveLength(count);
    expect(rows.every((row, index) => row.result === JSON.stringify({ doubled: index * 2 }))).toBe(true);
  });

  it('moves one batch of rows that end differently each as its own, and leaves the row whose lease was lost', async () => {
    for (const role of ['result', 'none', 'cancelled', 'stolen'] as const) {
      MixedRowEvent.ids.set(role, (await t.events.dispatch(new MixedRowEvent({ role })))!);
    }
    const result = await t.workers.runWorker(runOncePass('kept'));
    expect(result).toMatchObject({ processed: 2, cancelled: 1, failed: 0, retried: 0 });
    const rows = await historyRows();
    expect(rows.map((row) => [String(row.id), row.state, row.result])).toEqual([
      [MixedRowEvent.ids.get('result'), 'completed', '"result done"'],
      [MixedRowEvent.ids.get('none'), 'completed', null],
      [MixedRowEvent.ids.get('cancelled'), 'cancelled', '"cancelled done"'],
    ]);
    expect(rows.map((row) => row.error)).toEqual([null, null, expect.stringMatching(/\(row \d+\) was cancelled$/)]);
    expect(String(rows[2]!.error)).toContain(`(row ${MixedRowEvent.ids.get('cancelled')!})`);
    expect(rows.every((row) => row.worker_id === t.workers.workerId && Number(row.duration_ms) >= 0)).toBe(true);
    const [stolen] = await pendingRows(t.dataSource);
    expect(stolen).toMatchObject({ id: Number(MixedRowEvent.ids.get('stolen')), lease_token: 'someone-else' });
  });

  it('ships no per-row texts for a batch of events without results, and moves it without a locking read where the database allows', async () => {
    await t.events.dispatchMany(Array.from({ length: 20 }, () => new NoResultEvent(null)));
    const moves = recordStatements(t.dataSource, /nestjs_workers_history|^SELECT id, deleted_at FROM/);
    try {
      expect(await t.workers.runWorker(runOncePass('kept', { batchSize: 50, concurrency: 4 }))).toMatchObject({
        processed: 20,
      });
    } finally {
      moves.stop();
    }
    expect(await historyRows()).toHaveLength(20);
    const writes = moves.statements.filter(({ sql }) => /INSERT INTO \S*nestjs_workers_history/.test(sql));
    const lockingReads = moves.statements.filter(({ sql }) => /^SELECT id, deleted_at FROM/.test(sql));
    expect(writes).toHaveLength(1);
    if (database.name === 'PostgreSQL') {
      // One statement, the fenced DELETE feeding the INSERT: no locking read, no transaction of its own.
      expect(writes[0]!.sql).toMatch(/^WITH moved AS \(DELETE FROM \S*nestjs_workers"? WHERE lease_token/);
      expect(lockingReads).toEqual([]);
      // The lease token, the ids, the cancelled error's two halves, and two arrays: ids and durations.
      expect(writes[0]!.parameters).toHaveLength(6);
    } else if (database.name === 'SQLite') {
      // The INSERT returns what it copied (the DELETE removes that): the cancelled error's two halves
      // and the lease token are its only parameters; ids and durations are literals.
      expect(writes[0]!.sql).toMatch(/ RETURNING id, state$/);
      expect(lockingReads).toEqual([]);
      expect(writes[0]!.sql.match(/\?/g)).toHaveLength(3);
    } else {
      // The locking read, then an INSERT binding only the lease token: ids and durations are literals.
      expect(lockingReads).toHaveLength(1);
      expect(writes[0]!.sql.match(/\?/g)).toHaveLength(1);
    }
  });

  it('completes an event whose result does not serialize or is too large, keeping null and the reason', async () => {
    await t.events.dispatch(new FunctionResultEvent(null));
    await t.events.dispatch(new LargeResultEvent(null));
    const result = await t.workers.runWorker(runOncePass('kept'));
    expect(result).toMatchObject({ processed: 2, failed: 0, retried: 0 });
    const rows = await historyRows();
    expect(rows.map((row) => [row.state, row.result])).toEqual([
      ['completed', null],
      ['completed', null],
    ]);
    expect(rows[0]!.error).toBe('The result of FunctionResultEvent was not stored: it is a function (at result.f)');
    expect(rows[1]!.error).toMatch(
      /^The result of LargeResultEvent was not stored: it is 2003 bytes of JSON, more than maxPayloadBytes \(2000\)/,
    );
    expect(logger.messages('error')).toEqual([rows[0]!.error, rows[1]!.error]);
    expect(await failedRows(t.dataSource)).toEqual([]);
  });

  it('keeps nothing by default: the row is deleted and no history row is written', async () => {
    await t.events.dispatch(new PlainEvent(null));
    const result = await t.workers.runWorker(runOncePass('plain'));
    expect(result).toMatchObject({ processed: 1 });
    expect(await pendingRows(t.dataSource)).toEqual([]);
    expect(await historyRows()).toEqual([]);
  });

  it("decides per row: the event class's keepCompleted beats the queue's and the run's either way", async () => {
    await t.events.dispatch(new UnkeptEvent(null));
    await t.events.dispatch(new ClassKeptEvent(null));
    await t.events.dispatch(new PlainEvent(null));
    await t.workers.runWorker(runOncePass('kept'));
    await t.workers.runWorker(runOncePass('plain'));
    expect((await historyRows()).map((row) => [row.event_name, row.result])).toEqual([['ClassKeptEvent', '"done"']]);
    // The run's keepCompleted keeps what the class leaves to it, not what the class refuses.
    await t.events.dispatch(new PlainEvent(null));
    await t.events.dispatch(new UnkeptEvent(null));
    await t.workers.runWorker(runOncePass('plain', { keepCompleted: true }));
    await t.workers.runWorker(runOncePass('kept', { keepCompleted: true }));
    expect((await historyRows()).map((row) => row.event_name)).toEqual(['ClassKeptEvent', 'PlainEvent']);
    expect(await pendingRows(t.dataSource)).toEqual([]);
  });

  it('records an event cancelled while it ran as cancelled in the history', async () => {
    const id = await t.events.dispatch(new WaitForCancelEvent(null));
    const run = t.workers.runWorker(runOncePass('kept'));
    await waitFor(() => WaitForCancelEvent.started);
    expect(await t.workers.cancel(id!)).toMatchObject({ wasRunning: true });
    const result = await run;
    expect(result).toMatchObject({ processed: 0, cancelled: 1, failed: 0, retried: 0 });
    expect(await pendingRows(t.dataSource)).toEqual([]);
    const [row, ...others] = await historyRows();
    expect(others).toEqual([]);
    expect(row).toMatchObject({ id: Number(id), state: 'cancelled', result: null, worker_id: t.workers.workerId });
    expect(row!.error).toBe(`WaitForCancelEvent (row ${id}) was cancelled`);
    expect((await throughputTotals()).WaitForCancelEvent).toEqual({
      completed: 0,
      failed: 0,
      retried: 0,
      cancelled: 1,
      snoozed: 0,
    });
  });

  it.each([
    ['succeeded', false],
    ['failed', true],
  ])(
    'records an event cancelled in another process while it ran, whose attempt then %s, as cancelled in the history',
    async (_, fail) => {
      const id = await t.events.dispatch(new CancelledElsewhereEvent({ fail }));
      const run = t.workers.runWorker(runOncePass('kept'));
      await waitFor(() => CancelledElsewhereEvent.started);
      const peer = await createPeerApp(t, { events: EVENTS }, database);
      try {
        expect(await peer.workers.cancel(id!)).toMatchObject({ wasRunning: true });
      } finally {
        await peer.close();
      }
      CancelledElsewhereEvent.release();
      const result = await run;
      expect(result).toMatchObject({ processed: 0, cancelled: 1, failed: 0, retried: 0 });
      expect(await pendingRows(t.dataSource)).toEqual([]);
      const rows = await historyRows();
      // What the attempt returned is kept all the same: it ran to its end.
      const kept = fail ? null : '"finished after the cancel"';
      expect(rows.map((row) => [row.id, row.state, row.result])).toEqual([[Number(id), 'cancelled', kept]]);
      expect(String(rows[0]!.error)).toMatch(new RegExp(`\\(row ${id}\\) was cancelled$`));
    },
  );

  it('keeps the progress the row holds when the attempt reported none since', async () => {
    await t.events.dispatch(new ProgressEvent(null));
    await t.workers.runWorker(runOncePass('kept'));
    expect((await historyRows()).map((row) => [row.state, row.progress])).toEqual([['completed', '{"percent":50}']]);
  });

  it('neither copies nor deletes a row whose lease was lost while it ran', async () => {
    await t.events.dispatch(new LeaseStolenEvent(null));
    const result = await t.workers.runWorker(runOncePass('kept'));
    expect(result).toMatchObject({ processed: 0 });
    expect(await historyRows()).toEqual([]);
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ lease_token: 'someone-else', locked_by: 'other-worker' });
    expect(logger.messages('warn').some((message) => message.includes('the worker that holds it now'))).toBe(true);
    expect(await throughputRows()).toEqual([]);
  });

  it('moves an event that throws UnrecoverableError to the failed store at once, with its job columns', async () => {
    const id = await t.events.dispatch(new GiveUpEvent(null));
    const result = await t.workers.runWorker(runOncePass('mixed', { retries: 5 }));
    expect(result).toMatchObject({ failed: 1, retried: 0, processed: 0 });
    expect(await pendingRows(t.dataSource)).toEqual([]);
    const [failed] = await failedRows(t.dataSource);
    expect(failed).toMatchObject({
      job_id: Number(id),
      attempts: 1,
      retries: 5,
      worker_id: t.workers.workerId,
      progress: null,
    });
    expect(String(failed!.error)).toContain('UnrecoverableError: the account is gone');
    expect(failed!.available_at).toEqual(expect.any(Number));
    expect(failed!.started_at as number).toBeGreaterThanOrEqual(failed!.available_at as number);
    expect(failed!.duration_ms as number).toBeGreaterThanOrEqual(0);
    const announcedFailure = announced.find((event) => event.name === 'failed');
    expect(announcedFailure).toMatchObject({ eventName: 'GiveUpEvent', permanent: true });
    expect(await counted('events_failed_permanently_total', 'GiveUpEvent')).toBe(1);
    expect(await counted('events_failed_total', 'GiveUpEvent')).toBe(1);
    expect(await counted('events_retried_total', 'GiveUpEvent')).toBe(0);
  });

  it('snoozes: due later on the database clock, its attempt not counted, not failed; then runs again and completes', async () => {
    await t.events.dispatch(new SnoozeOnceEvent({ seconds: 60 }));
    const before = Date.now();
    // retries 1: had the snooze counted as an attempt, the next run would exhaust it.
    const first = await t.workers.runWorker(runOncePass('mixed', { retries: 1 }));
    expect(first).toMatchObject({ processed: 0, failed: 0, retried: 0, snoozed: 1 });
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ attempts: 0, error: null, lease_token: null, locked_by: null });
    expect(row!.available_at as number).toBeGreaterThanOrEqual(before + 59_000);
    expect(row!.available_at as number).toBeLessThanOrEqual(Date.now() + 61_000);
    expect(await failedRows(t.dataSource)).toEqual([]);
    expect(announced.find((event) => event.name === 'snoozed')).toMatchObject({
      eventName: 'SnoozeOnceEvent',
      dueAt: new Date(row!.available_at as number),
    });
    expect(await counted('events_snoozed_total', 'SnoozeOnceEvent')).toBe(1);
    expect(await counted('events_retried_total', 'SnoozeOnceEvent')).toBe(0);
    // Not due yet: a pass leaves it alone.
    expect(await t.workers.runWorker(runOncePass('mixed', { retries: 1 }))).toMatchObject({ processed: 0 });
    await t.dataSource.query('UPDATE nestjs_workers SET available_at = 1');
    const second = await t.workers.runWorker(runOncePass('mixed', { retries: 1 }));
    expect(second).toMatchObject({ processed: 1, failed: 0, retried: 0 });
    expect(SnoozeOnceEvent.runs).toBe(2);
    expect(await pendingRows(t.dataSource)).toEqual([]);
    expect(await failedRows(t.dataSource)).toEqual([]);
  });

  it('fails the attempt of an invalid snooze with InvalidSnoozeError', async () => {
    await t.events.dispatch(new BadSnoozeEvent(null));
    const result = await t.workers.runWorker(runOncePass('mixed'));
    expect(result).toMatchObject({ retried: 1, processed: 0 });
    expect(result.snoozed).toBeUndefined();
    const [row] = await pendingRows(t.dataSource);
    expect(row).toMatchObject({ attempts: 1 });
    expect(String(row!.error)).toContain(
      'InvalidSnoozeError: BadSnoozeEvent cannot snooze: seconds must be at least 0 (got -1)',
    );
  });

  it('adds each batch’s outcome counts to the per-minute throughput with one upsert per batch', async () => {
    for (const n of [1, 2, 3]) await t.events.dispatch(new OkEvent({ n }));
    await t.events.dispatch(new FlakyEvent(null));
    await t.events.dispatch(new FlakyEvent(null));
    await t.events.dispatch(new GiveUpEvent(null));
    await t.events.dispatch(new SnoozeOnceEvent({ seconds: 0 }));
    const upserts = countStatements(t.dataSource, /^INSERT INTO \S*nestjs_workers_throughput/);
    const before = Date.now();
    const first = await t.workers.runWorker(runOncePass('mixed', { batchSize: 50, concurrency: 4 }));
    expect(first).toMatchObject({ processed: 3, retried: 2, failed: 1, snoozed: 1 });
    expect(upserts.count).toBe(1);
    const rows = await throughputRows();
    // One row per event name, all at one minute (the batch's), on the database's clock.
    expect(
      rows.map((row) => [row.event_name, row.completed, row.failed, row.retried, row.cancelled, row.snoozed]),
    ).toEqual([
      ['FlakyEvent', 0, 0, 2, 0, 0],
      ['GiveUpEvent', 0, 1, 0, 0, 0],
      ['OkEvent', 3, 0, 0, 0, 0],
      ['SnoozeOnceEvent', 0, 0, 0, 0, 1],
    ]);
    const minutes = new Set(rows.map((row) => row.minute));
    expect(minutes.size).toBe(1);
    const [minute] = [...minutes] as number[];
    expect(minute! % 60_000).toBe(0);
    expect(minute!).toBeGreaterThan(before - 2 * 60_000);
    expect(minute!).toBeLessThanOrEqual(Date.now());
    expect(rows.every((row) => row.queue_name === 'mixed' && Number(row.duration_ms) >= 0)).toBe(true);

    // The next batch adds to the same counters.
    await t.dataSource.query('UPDATE nestjs_workers SET available_at = 1');
    const second = await t.workers.runWorker(runOncePass('mixed', { batchSize: 50, concurrency: 4 }));
    expect(second).toMatchObject({ processed: 1, retried: 2, failed: 0 });
    expect(upserts.count).toBe(2);
    upserts.stop();
    expect(await throughputTotals()).toEqual({
      FlakyEvent: { completed: 0, failed: 0, retried: 4, cancelled: 0, snoozed: 0 },
      GiveUpEvent: { completed: 0, failed: 1, retried: 0, cancelled: 0, snoozed: 0 },
      OkEvent: { completed: 3, failed: 0, retried: 0, cancelled: 0, snoozed: 0 },
      SnoozeOnceEvent: { completed: 1, failed: 0, retried: 0, cancelled: 0, snoozed: 1 },
    });
  });
});
