/**
 * Operations on every database: the failed store through FailedWorkerService (list, show, retry one
 * or all, delete, purge, bad input), getQueueStatistics() in one query, and @OnWorkerEvent() hooks.
 */
import { Injectable, Scope } from '@nestjs/common';
import {
  BaseEvent,
  FailedWorkerNotFoundError,
  FailedWorkerService,
  InvalidWorkerOptionsError,
  OnWorkerEvent,
  QueueEvent,
  type WorkerLifecycleEvent,
} from '../lib/index.js';
import { testDatabases } from './support/databases.js';
import {
  createTestApp,
  failedRows,
  pendingRows,
  RecordingLogger,
  runOncePass,
  type TestApp,
} from './support/test-app.js';

const outcomes = { shouldFail: true };

@QueueEvent('ops-mail', { retries: 1 })
class OpsMailEvent extends BaseEvent<{ to: string }> {
  async execute(): Promise<void> {
    if (outcomes.shouldFail) throw new Error(`mailbox of ${this.getPayload().to} is full`);
  }
}

@QueueEvent('ops-billing', { retries: 1 })
class OpsInvoiceEvent extends BaseEvent<{ invoice: number }> {
  async execute(): Promise<void> {
    if (outcomes.shouldFail) throw new Error('billing down');
  }
}

@QueueEvent('ops-flaky', { retries: 2 })
class OpsFlakyEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    if (outcomes.shouldFail) throw new Error('flaky');
  }
}

@Injectable()
class HookRecorder {
  readonly seen: WorkerLifecycleEvent[] = [];

  @OnWorkerEvent('dispatched', 'completed', 'retrying', 'failed')
  record(event: WorkerLifecycleEvent): void {
    this.seen.push(event);
  }

  @OnWorkerEvent('completed')
  explode(): void {
    throw new Error('hook bug');
  }
}

@Injectable({ scope: Scope.REQUEST })
class RequestScopedHook {
  @OnWorkerEvent('completed')
  never(): void {}
}

const EVENTS = [OpsMailEvent, OpsInvoiceEvent, OpsFlakyEvent];

describe.each(testDatabases())('failed store and statistics ($name)', (database) => {
  let t: TestApp;
  let failedStore: FailedWorkerService;

  beforeEach(async () => {
    outcomes.shouldFail = true;
    t = await createTestApp({ events: EVENTS }, {}, database);
    failedStore = t.app.get(FailedWorkerService);
  });

  afterEach(async () => {
    await t.close();
  });

  async function failEvents(): Promise<void> {
    for (const to of ['a@x', 'b@x', 'c@x']) await t.events.dispatch(new OpsMailEvent({ to }));
    await t.events.dispatch(new OpsInvoiceEvent({ invoice: 7 }));
    await t.workers.runWorker(runOncePass('ops-mail'));
    await t.workers.runWorker(runOncePass('ops-billing'));
  }

  it('lists failed events newest first, paged and filtered by queue and event name', async () => {
    await failEvents();
    const all = await failedStore.list();
    expect(all).toMatchObject({ total: 4, page: 1, pageSize: 20 });
    expect(all.items.map((item) => item.eventName)).toEqual([
      'OpsInvoiceEvent',
      'OpsMailEvent',
      'OpsMailEvent',
      'OpsMailEvent',
    ]);
    expect(all.items[1]).toMatchObject({ queueName: 'ops-mail', payload: { to: 'c@x' }, attempts: 1, retries: 1 });
    expect(all.items[1]!.error).toContain('mailbox of c@x is full');
    expect(all.items[1]!.failedAt).toBeInstanceOf(Date);

    const secondPage = await failedStore.list({ queueName: 'ops-mail', page: 2, pageSize: 2 });
    expect(secondPage).toMatchObject({ total: 3, page: 2, pageSize: 2 });
    expect(secondPage.items.map((item) => item.payload)).toEqual([{ to: 'a@x' }]);
    expect((await failedStore.list({ eventName: 'OpsInvoiceEvent' })).items.map((item) => item.payload)).toEqual([
      { invoice: 7 },
    ]);
  });

  it('shows one failed event and retries it: a new pending row with attempts reset, gone from the failed store', async () => {
    await failEvents();
    const [newest] = (await failedStore.list({ queueName: 'ops-mail', pageSize: 1 })).items;
    expect(await failedStore.get(newest!.id)).toEqual(newest);

    await failedStore.retry(newest!.id);
    await expect(failedStore.get(newest!.id)).rejects.toBeInstanceOf(FailedWorkerNotFoundError);
    expect(await pendingRows(t.dataSource)).toEqual([
      expect.objectContaining({
        queue_name: 'ops-mail',
        event_name: 'OpsMailEvent',
        attempts: 0,
        error: null,
        payload: '{"to":"c@x"}',
      }),
    ]);
    outcomes.shouldFail = false;
    expect(await t.workers.runWorker(runOncePass('ops-mail'))).toMatchObject({ processed: 1 });
    expect((await failedStore.list()).total).toBe(3);
  });

  it('retries every failed event of a queue in one call, and a second retry of one id finds nothing', async () => {
    await failEvents();
    const [one] = (await failedStore.list({ queueName: 'ops-mail' })).items;
    expect(await failedStore.retryAll({ queueName: 'ops-mail' })).toBe(3);
    await expect(failedStore.retry(one!.id)).rejects.toThrow(`No failed event with id "${one!.id}"`);
    expect((await pendingRows(t.dataSource)).map((row) => row.queue_name)).toEqual([
      'ops-mail',
      'ops-mail',
      'ops-mail',
    ]);
    expect((await failedRows(t.dataSource)).map((row) => row.queue_name)).toEqual(['ops-billing']);
    expect(await failedStore.retryAll()).toBe(1);
    expect(await failedRows(t.dataSource)).toEqual([]);
  });

  it('deletes one failed event and purges those older than a date', async () => {
    await failEvents();
    const { items } = await failedStore.list();
    await failedStore.delete(items[0]!.id);
    await expect(failedStore.delete(items[0]!.id)).rejects.toBeInstanceOf(FailedWorkerNotFoundError);
    expect(await failedStore.purge(new Date(Date.now() - 60_000))).toBe(0);
    expect(await failedStore.purge(new Date(Date.now() + 1))).toBe(3);
    expect((await failedStore.list()).total).toBe(0);
  });

  it('refuses bad input with typed errors and changes nothing', async () => {
    await failEvents();
    await expect(failedStore.retry('999999')).rejects.toBeInstanceOf(FailedWorkerNotFoundError);
    await expect(failedStore.get('abc')).rejects.toThrow(
      'Invalid nestjs-workers option "id": must be a failed event id, a positive integer (got "abc")',
    );
    await expect(failedStore.list({ pageSize: 0 })).rejects.toThrow('"pageSize": must be an integer ≥ 1 (got 0)');
    await expect(failedStore.list({ pageSize: 501 })).rejects.toThrow('"pageSize": must be at most 500 (got 501)');
    await expect(failedStore.list({ page: 1.5 })).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
    await expect(failedStore.list({ queue: 'ops-mail' } as never)).rejects.toThrow('"queue": is not an option');
    await expect(failedStore.purge(new Date('not a date'))).rejects.toThrow(
      '"olderThan": must be a valid Date (got Invalid Date)',
    );
    await expect(failedStore.purge('2026-01-01' as never)).rejects.toThrow(
      '"olderThan": must be a valid Date (got string)',
    );
    expect((await failedStore.list()).total).toBe(4);
    expect(await pendingRows(t.dataSource)).toEqual([]);
  });

  it('reports pending, due, running, delayed, failed and the oldest due age per queue', async () => {
    await failEvents();
    for (let n = 0; n < 3; n++) await t.events.dispatch(new OpsFlakyEvent({ n }));
    // One retries later (delayed), one is leased (running), one is still due.
    await t.workers.runWorker(runOncePass('ops-flaky', { concurrency: 1, runAfterSeconds: 60, retries: 2 }));
    const statistics = await t.workers.getQueueStatistics(['ops-flaky', 'ops-mail', 'nothing-here']);
    expect(statistics[0]).toMatchObject({
      queueName: 'ops-flaky',
      pending: 3,
      due: 0,
      running: 0,
      delayed: 3,
      failed: 0,
      oldestDueAgeMs: null,
    });
    expect(statistics[1]).toMatchObject({
      queueName: 'ops-mail',
      pending: 0,
      due: 0,
      running: 0,
      delayed: 0,
      failed: 3,
    });
    expect(statistics[2]).toEqual({
      queueName: 'nothing-here',
      pending: 0,
      due: 0,
      running: 0,
      delayed: 0,
      failed: 0,
      oldestDueAgeMs: null,
      paused: false,
    });

    await t.dataSource.query(
      'UPDATE nestjs_workers SET available_at = 1 WHERE id = (SELECT MIN(id) FROM (SELECT id FROM nestjs_workers) ids)',
    );
    await t.dataSource.query(
      "UPDATE nestjs_workers SET lease_token = 'held', lease_expires_at = 9999999999999 WHERE id = (SELECT MAX(id) FROM (SELECT id FROM nestjs_workers) ids)",
    );
    const [flaky] = await t.workers.getQueueStatistics(['ops-flaky']);
    expect(flaky).toMatchObject({ pending: 3, due: 1, running: 1, delayed: 1, failed: 0 });
    expect(flaky!.oldestDueAgeMs).toBeGreaterThan(Date.now() - 10_000);

    // Without names: every known queue (registered events) and every queue with rows.
    const everything = await t.workers.getQueueStatistics();
    expect(everything.map((entry) => entry.queueName)).toEqual(
      expect.arrayContaining(['ops-billing', 'ops-flaky', 'ops-mail']),
    );
    expect(everything.find((entry) => entry.queueName === 'ops-billing')).toMatchObject({ failed: 1, pending: 0 });
  });
});

describe.each(testDatabases())('lifecycle hooks ($name)', (database) => {
  it('calls @OnWorkerEvent() methods on dispatch, completion, retry and final failure; a throwing hook is logged only', async () => {
    const logger = new RecordingLogger();
    const t = await createTestApp(
      { events: EVENTS, logger },
      { providers: [HookRecorder, RequestScopedHook] },
      database,
    );
    try {
      const hooks = t.app.get(HookRecorder);
      outcomes.shouldFail = false;
      await t.events.dispatch(new OpsMailEvent({ to: 'ok@x' }));
      expect(await t.workers.runWorker(runOncePass('ops-mail'))).toMatchObject({ processed: 1 });
      outcomes.shouldFail = true;
      await t.events.dispatch(new OpsFlakyEvent({ n: 1 }));
      await t.workers.runWorker(runOncePass('ops-flaky', { retries: 2, runOnce: false }));

      expect(hooks.seen.map((event) => `${event.name} ${event.eventName}`)).toEqual([
        'dispatched OpsMailEvent',
        'completed OpsMailEvent',
        'dispatched OpsFlakyEvent',
        'retrying OpsFlakyEvent',
        'failed OpsFlakyEvent',
      ]);
      const [dispatched, completed, , retrying, failed] = hooks.seen;
      expect(dispatched).toMatchObject({ queueName: 'ops-mail', attributes: { payload: { to: 'ok@x' }, attempts: 0 } });
      expect(dispatched!.event).toBeInstanceOf(OpsMailEvent);
      expect(completed!.durationMs).toEqual(expect.any(Number));
      expect(completed!.event).toBeInstanceOf(OpsMailEvent);
      expect(retrying).toMatchObject({
        attributes: { attempts: 1 },
        error: expect.objectContaining({ message: 'flaky' }),
      });
      expect(failed).toMatchObject({
        attributes: { attempts: 2 },
        error: expect.objectContaining({ message: 'flaky' }),
      });
      // The throwing hook was logged and processing went on.
      expect(logger.messages('error')).toContain(
        "Worker lifecycle hook HookRecorder.explode failed on 'completed' of OpsMailEvent: hook bug",
      );
      expect(logger.messages('warn')).toContain(
        '@OnWorkerEvent() on RequestScopedHook.never is skipped: the provider is request-scoped, so there is no instance to call',
      );
      expect(await pendingRows(t.dataSource)).toEqual([]);
    } finally {
      await t.close();
    }
  });
});
