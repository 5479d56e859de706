/**
 * Priority, unique events and cancellation on every database: claim order by priority, one pending
 * or running row per unique key (raced by 8 dispatchers in 8 app instances), WorkerService.cancel()
 * by id or key (waiting, running here, running in another instance; never retried), and bad input.
 */
import {
  BaseEvent,
  EventCancelledError,
  FailedWorkerService,
  InvalidWorkerOptionsError,
  QueueEvent,
  WORKER_DATA_SOURCE,
  WorkerLifecycle,
  type WorkerLifecycleEvent,
} from '../lib/index.js';
import { testDatabases } from './support/databases.js';
import {
  createPeerApp,
  createTestApp,
  execute,
  failedRows,
  pendingRows,
  runOncePass,
  type TestApp,
  waitFor,
} from './support/test-app.js';

const ran: string[] = [];

@QueueEvent('control-priority')
class RankedEvent extends BaseEvent<{ label: string }> {
  async execute(): Promise<void> {
    ran.push(this.getPayload().label);
  }
}

@QueueEvent('control-priority', { priority: -5 })
class UrgentEvent extends BaseEvent<{ label: string }> {
  async execute(): Promise<void> {
    ran.push(this.getPayload().label);
  }
}

@QueueEvent('control-unique')
class ReportEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    ran.push(`report ${this.getPayload().n}`);
  }
}

@QueueEvent('control-unique-other')
class OtherQueueReportEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

/** Runs until its signal is aborted (recording the reason) or until released; fails afterwards when told to. */
@QueueEvent('control-cancel', { retries: 3 })
class LongEvent extends BaseEvent<{ label: string; ignoreSignal?: boolean }> {
  static started: string[] = [];
  static reasons: unknown[] = [];
  static release: () => void = () => undefined;

  async execute(signal?: AbortSignal): Promise<void> {
    LongEvent.started.push(this.getPayload().label);
    await new Promise<void>((resolve) => {
      LongEvent.release = resolve;
      if (!this.getPayload().ignoreSignal)
        signal?.addEventListener('abort', () => (LongEvent.reasons.push(signal.reason), resolve()));
    });
    if (signal?.aborted || this.getPayload().ignoreSignal) throw new Error('stopped');
  }
}

const EVENTS = [RankedEvent, UrgentEvent, ReportEvent, OtherQueueReportEvent, LongEvent];

describe.each(testDatabases())('priority, unique events and cancellation ($name)', (database) => {
  let t: TestApp;
  const peers: TestApp[] = [];
  const hooks: WorkerLifecycleEvent[] = [];

  beforeEach(async () => {
    ran.length = 0;
    hooks.length = 0;
    LongEvent.started = [];
    LongEvent.reasons = [];
    t = await createTestApp({ events: EVENTS }, {}, database);
    t.app.get(WorkerLifecycle).subscribe((event) => void hooks.push(event), 'test');
  });

  afterEach(async () => {
    LongEvent.release();
    for (const peer of peers.splice(0)) await peer.close();
    await t.close();
  });

  describe('priority', () => {
    it('claims lower priority values first and keeps oldest first among equal priorities', async () => {
      const dispatched: [string, number][] = [
        ['a0', 0],
        ['b5', 5],
        ['c-3', -3],
        ['d0', 0],
        ['e-3', -3],
        ['f10', 10],
      ];
      for (const [label, priority] of dispatched) await t.events.dispatch(new RankedEvent({ label }), { priority });
      await t.workers.runWorker(runOncePass('control-priority', { concurrency: 1 }));
      expect(ran).toEqual(['c-3', 'e-3', 'a0', 'd0', 'b5', 'f10']);
    });

    it('claims the most urgent due rows first even when a batch takes only some of them', async () => {
      for (let n = 0; n < 6; n++) await t.events.dispatch(new RankedEvent({ label: `normal ${n}` }));
      await t.events.dispatch(new RankedEvent({ label: 'urgent' }), { priority: -1 });
      // A delayed row is passed over whatever its priority.
      await t.events.dispatch(new RankedEvent({ label: 'delayed' }), { priority: -100, delaySeconds: 60 });
      await t.workers.runWorker(runOncePass('control-priority', { concurrency: 2 }));
      expect(ran.slice(0, 2).sort()).toEqual(['normal 0', 'urgent']);
      expect(ran).not.toContain('delayed');
    });

    it("uses the class's @QueueEvent priority unless the dispatch names one, and keeps it in the failed store and on retry", async () => {
      await t.events.dispatch(new UrgentEvent({ label: 'class' }));
      await t.events.dispatch(new UrgentEvent({ label: 'override' }), { priority: 3 });
      await t.events.dispatch(new RankedEvent({ label: 'default' }));
      expect((await pendingRows(t.dataSource)).map((row) => row.priority)).toEqual([-5, 3, 0]);
      await execute(t.dataSource, 'UPDATE nestjs_workers SET event_name = ? WHERE priority = -5', [
        'NoLongerRegistered',
      ]);
      await t.workers.runWorker(runOncePass('control-priority'));
      const [failed] = await failedRows(t.dataSource);
      expect(failed).toMatchObject({ event_name: 'NoLongerRegistered', priority: -5 });
      await new FailedWorkerService(t.app.get(WORKER_DATA_SOURCE)).retry(String(failed!.id));
      expect((await pendingRows(t.dataSource)).map((row) => row.priority)).toEqual([-5]);
    });
  });

  describe('unique events', () => {
    it('adds no second row for a key that a pending event of the queue holds, and resolves to its id', async () => {
      const first = await t.events.dispatch(new ReportEvent({ n: 1 }), { uniqueKey: 'daily' });
      const second = await t.events.dispatch(new ReportEvent({ n: 2 }), { uniqueKey: 'daily' });
      const otherKey = await t.events.dispatch(new ReportEvent({ n: 3 }), { uniqueKey: 'weekly' });
      const otherQueue = await t.events.dispatch(new OtherQueueReportEvent({ n: 4 }), { uniqueKey: 'daily' });
      const unkeyed = [
        await t.events.dispatch(new ReportEvent({ n: 5 })),
        await t.events.dispatch(new ReportEvent({ n: 6 })),
      ];
      expect(second).toBe(first);
      expect(new Set([first, otherKey, otherQueue, ...unkeyed]).size).toBe(5);
      const rows = await pendingRows(t.dataSource);
      expect(rows.map((row) => [row.queue_name, row.unique_key, JSON.parse(String(row.payload)).n])).toEqual([
        ['control-unique', 'daily', 1],
        ['control-unique', 'weekly', 3],
        ['control-unique-other', 'daily', 4],
        ['control-unique', null, 5],
        ['control-unique', null, 6],
      ]);
      // Only rows that were added are announced.
      expect(hooks.filter((hook) => hook.name === 'dispatched').map((hook) => hook.attributes.payload)).toEqual([
        { n: 1 },
        { n: 3 },
        { n: 4 },
        { n: 5 },
        { n: 6 },
      ]);
    });

    it('keeps the key while the event runs and frees it once the event completed, failed for good or was cancelled', async () => {
      const first = await t.events.dispatch(new LongEvent({ label: 'first' }), { uniqueKey: 'k' });
      const run = t.workers.runWorker(runOncePass('control-cancel'));
      await waitFor(() => LongEvent.started.length === 1);
      expect(await t.events.dispatch(new LongEvent({ label: 'while running' }), { uniqueKey: 'k' })).toBe(first);
      LongEvent.release();
      await run;
      const afterCompletion = await t.events.dispatch(new ReportEvent({ n: 1 }), { uniqueKey: 'k' });
      expect(afterCompletion).not.toBe(first);
      await t.workers.runWorker(runOncePass('control-unique'));
      const doomed = await t.events.dispatch(new ReportEvent({ n: 2 }), { uniqueKey: 'k' });
      await execute(t.dataSource, 'UPDATE nestjs_workers SET event_name = ? WHERE id = ?', ['Gone', doomed]);
      await t.workers.runWorker(runOncePass('control-unique'));
      expect(await failedRows(t.dataSource)).toHaveLength(1);
      const afterFailure = await t.events.dispatch(new ReportEvent({ n: 3 }), { uniqueKey: 'k' });
      expect(await t.workers.cancel({ queueName: 'control-unique', uniqueKey: 'k' })).toMatchObject({
        id: afterFailure,
        wasRunning: false,
      });
      const afterCancel = await t.events.dispatch(new ReportEvent({ n: 4 }), { uniqueKey: 'k' });
      expect(new Set([first, afterCompletion, doomed, afterFailure, afterCancel]).size).toBe(5);
    });

    it('holds across 8 app instances dispatching the same keys at the same moment', async () => {
      for (let n = 1; n < 8; n++) peers.push(await createPeerApp(t, { events: EVENTS }, database));
      const dispatchers = [t, ...peers];
      for (let round = 0; round < 5; round++) {
        const ids = await Promise.all(
          dispatchers.map((app, n) => app.events.dispatch(new ReportEvent({ n }), { uniqueKey: `race-${round}` })),
        );
        expect(new Set(ids).size).toBe(1);
      }
      const rows = await pendingRows(t.dataSource);
      expect(rows.map((row) => row.unique_key)).toEqual(['race-0', 'race-1', 'race-2', 'race-3', 'race-4']);
      await t.workers.runWorker(runOncePass('control-unique'));
      expect(ran).toHaveLength(5);
    });

    if (database.type !== 'better-sqlite3') {
      it("resolves to the holder's id inside a transaction without aborting it, and a rolled-back key is free", async () => {
        const held = await t.events.dispatch(new ReportEvent({ n: 1 }), { uniqueKey: 'in-tx' });
        await t.dataSource.transaction(async (manager) => {
          expect(await t.events.dispatch(new ReportEvent({ n: 2 }), { manager, uniqueKey: 'in-tx' })).toBe(held);
          // The transaction is still usable after the taken key (PostgreSQL would refuse every statement after an error).
          await t.events.dispatch(new ReportEvent({ n: 3 }), { manager, uniqueKey: 'committed' });
        });
        await expect(
          t.dataSource.transaction(async (manager) => {
            await t.events.dispatch(new ReportEvent({ n: 4 }), { manager, uniqueKey: 'rolled-back' });
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        await t.events.dispatch(new ReportEvent({ n: 5 }), { uniqueKey: 'rolled-back' });
        expect((await pendingRows(t.dataSource)).map((row) => row.unique_key)).toEqual([
          'in-tx',
          'committed',
          'rolled-back',
        ]);
      });
    }
  });

  describe('cancellation', () => {
    it('removes a waiting event by id or by unique key, announces it, and reports unknown ones as undefined', async () => {
      const byId = await t.events.dispatch(new ReportEvent({ n: 1 }));
      const byKey = await t.events.dispatch(new ReportEvent({ n: 2 }), { uniqueKey: 'nightly' });
      const kept = await t.events.dispatch(new ReportEvent({ n: 3 }), { delaySeconds: 60 });
      expect(await t.workers.cancel(byId!)).toEqual({
        id: byId,
        queueName: 'control-unique',
        eventName: 'ReportEvent',
        wasRunning: false,
        attributes: expect.objectContaining({ id: byId, payload: { n: 1 } }),
      });
      expect(await t.workers.cancel({ queueName: 'control-unique', uniqueKey: 'nightly' })).toMatchObject({
        id: byKey,
        wasRunning: false,
      });
      expect(await t.workers.cancel(byId!)).toBeUndefined();
      expect(await t.workers.cancel({ queueName: 'control-unique-other', uniqueKey: 'nightly' })).toBeUndefined();
      expect(await t.workers.runWorker(runOncePass('control-unique'))).toMatchObject({ processed: 0 });
      expect(ran).toEqual([]);
      expect((await pendingRows(t.dataSource)).map((row) => String(row.id))).toEqual([kept]);
      expect(hooks.filter((hook) => hook.name === 'cancelled').map((hook) => hook.attributes.payload)).toEqual([
        { n: 1 },
        { n: 2 },
      ]);
    });

    it('aborts an event running in this process with EventCancelledError and removes its row instead of retrying it', async () => {
      const id = await t.events.dispatch(new LongEvent({ label: 'running' }), { uniqueKey: 'job' });
      const run = t.workers.runWorker(runOncePass('control-cancel'));
      await waitFor(() => LongEvent.started.length === 1);
      expect(await t.workers.cancel({ queueName: 'control-cancel', uniqueKey: 'job' })).toMatchObject({
        id,
        wasRunning: true,
      });
      expect(await run).toEqual({ queueName: 'control-cancel', processed: 0, failed: 0, retried: 0, cancelled: 1 });
      expect(LongEvent.reasons).toHaveLength(1);
      expect(LongEvent.reasons[0]).toBeInstanceOf(EventCancelledError);
      expect(await pendingRows(t.dataSource)).toEqual([]);
      expect(await failedRows(t.dataSource)).toEqual([]);
      expect(hooks.filter((hook) => hook.name === 'cancelled')).toHaveLength(1);
      // The key was freed when the cancel was accepted.
      expect(await t.events.dispatch(new LongEvent({ label: 'again' }), { uniqueKey: 'job' })).not.toBe(id);
    });

    it('aborts an event running in another app instance at its next heartbeat', async () => {
      const worker = await createPeerApp(t, { events: EVENTS, leaseSeconds: 1.5 }, database);
      peers.push(worker);
      const id = await t.events.dispatch(new LongEvent({ label: 'elsewhere' }));
      const run = worker.workers.runWorker(runOncePass('control-cancel'));
      await waitFor(() => LongEvent.started.length === 1);
      const cancelledAt = Date.now();
      expect(await t.workers.cancel(id!)).toMatchObject({ id, wasRunning: true });
      expect(await run).toMatchObject({ processed: 0, retried: 0, failed: 0, cancelled: 1 });
      // Heartbeats come every leaseSeconds / 3 = 0.5 s.
      expect(Date.now() - cancelledAt).toBeLessThan(1500);
      expect(LongEvent.reasons[0]).toBeInstanceOf(EventCancelledError);
      expect(await pendingRows(t.dataSource)).toEqual([]);
      // No worker claims the row meanwhile: the cancel took it out of line.
      expect(await t.workers.runWorker(runOncePass('control-cancel'))).toMatchObject({ processed: 0, cancelled: 0 });
    });

    it('never retries nor fails over an event that ended in failure before its worker heard of the cancel', async () => {
      const worker = await createPeerApp(t, { events: EVENTS, leaseSeconds: 60 }, database);
      peers.push(worker);
      for (const [label, attempts] of [
        ['retryable', 0],
        ['last attempt', 2],
      ] as const) {
        const id = await t.events.dispatch(new LongEvent({ label, ignoreSignal: true }));
        await execute(t.dataSource, 'UPDATE nestjs_workers SET attempts = ? WHERE id = ?', [attempts, id]);
        const run = worker.workers.runWorker(runOncePass('control-cancel'));
        await waitFor(() => LongEvent.started.includes(label));
        expect(await t.workers.cancel(id!)).toMatchObject({ wasRunning: true });
        LongEvent.release();
        expect(await run).toMatchObject({ processed: 0, retried: 0, failed: 0, cancelled: 1 });
      }
      expect(await pendingRows(t.dataSource)).toEqual([]);
      expect(await failedRows(t.dataSource)).toEqual([]);
    });
  });

  describe('bad input', () => {
    it.each([
      ['priority 1.5', { priority: 1.5 }, 'priority'],
      ["priority '1'", { priority: '1' }, 'priority'],
      ['priority 2^31', { priority: 2 ** 31 }, 'priority'],
      ["uniqueKey ''", { uniqueKey: '' }, 'uniqueKey'],
      ['uniqueKey 7', { uniqueKey: 7 }, 'uniqueKey'],
      ['a 256-character uniqueKey', { uniqueKey: 'k'.repeat(256) }, 'uniqueKey'],
    ])('refuses dispatch with %s, naming the option and storing nothing', async (_label, options, field) => {
      const attempt = t.events.dispatch(new ReportEvent({ n: 1 }), options as never);
      await expect(attempt).rejects.toThrow(InvalidWorkerOptionsError);
      await expect(t.events.dispatch(new ReportEvent({ n: 1 }), options as never)).rejects.toThrow(
        `Invalid nestjs-workers option "${field}"`,
      );
      expect(await pendingRows(t.dataSource)).toEqual([]);
    });

    it.each([
      ['abc', 'id'],
      ['0', 'id'],
      ['9223372036854775808', 'id'],
      [{ queueName: 'control-unique' }, 'uniqueKey'],
      [{ queueName: '', uniqueKey: 'k' }, 'queueName'],
      [{ queueName: 'q', uniqueKey: 'k', id: '1' }, 'id'],
    ])('refuses cancel(%j) naming %s', async (target, field) => {
      await expect(t.workers.cancel(target as never)).rejects.toThrow(`Invalid nestjs-workers option "${field}"`);
    });

    it('refuses a priority on @QueueEvent() that is not an integer when the class is defined', () => {
      expect(() => {
        @QueueEvent('control-bad', { priority: 0.5 })
        class BadPriorityEvent extends BaseEvent<null> {
          async execute(): Promise<void> {}
        }
        return BadPriorityEvent;
      }).toThrow(
        'Invalid nestjs-workers option "@QueueEvent() on BadPriorityEvent: options.priority": must be an integer',
      );
    });
  });

  it('resolves cancel() of an event that already completed to undefined', async () => {
    const id = await t.events.dispatch(new ReportEvent({ n: 1 }));
    await t.workers.runWorker(runOncePass('control-unique'));
    expect(await t.workers.cancel(id!)).toBeUndefined();
  });
});
