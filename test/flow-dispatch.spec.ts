/**
 * Dispatch's flow options on every database: the concurrency key (dispatch option, @QueueEvent
 * function, getConcurrencyKey(); stored per row, by dispatchMany too), throttled dispatch (one event
 * per key and period, raced by 8 app instances), debounced dispatch (a waiting event takes the last
 * payload, a running one gives up its key; raced too), both in a caller's transaction on the
 * servers, and bad input.
 */
import { SetMetadata } from '@nestjs/common';
import {
  BaseEvent,
  EventService,
  FailedWorkerService,
  InvalidConcurrencyKeyError,
  InvalidDispatchFlowError,
  InvalidEventFlowOptionsError,
  InvalidWorkerOptionsError,
  type IWorkerRowStore,
  QueueEvent,
  TypeOrmWorkerCreator,
  WorkerError,
  WorkerLifecycle,
  type WorkerLifecycleEvent,
} from '../lib/index.js';
import { QUEUE_EVENT_METADATA } from '../lib/worker.constants.js';
import { normalizeRow, testDatabases } from './support/databases.js';
import {
  createPeerApp,
  createTestApp,
  execute,
  failedRows,
  pendingRows,
  runOncePass,
  sleep,
  type TestApp,
  waitFor,
} from './support/test-app.js';

const ran: { event: string; n: number }[] = [];

@QueueEvent('flow-keys')
class PlainEvent extends BaseEvent<{ n: number; account?: string }> {
  async execute(): Promise<void> {
    ran.push({ event: 'plain', n: this.getPayload().n });
  }
}

/** The key comes from the payload through the decorator (undefined for a payload without an account). */
@QueueEvent('flow-keys', { concurrencyKey: (payload: { account?: string }) => payload.account, keyConcurrency: 2 })
class AccountEvent extends BaseEvent<{ n: number; account?: string }> {
  async execute(): Promise<void> {
    ran.push({ event: 'account', n: this.getPayload().n });
  }

  /** Never asked: the decorator's function answers for this class. */
  override getConcurrencyKey(): string | undefined {
    return 'from the method';
  }
}

/** The key comes from the event's own method. */
@QueueEvent('flow-keys')
class TenantEvent extends BaseEvent<{ n: number; tenant: unknown }> {
  async execute(): Promise<void> {}

  override getConcurrencyKey(): string | undefined {
    const { tenant } = this.getPayload();
    if (tenant === 'throw') throw new Error('no tenant today');
    return tenant as string | undefined;
  }
}

/** A decorator function that fails or returns what is no key. */
@QueueEvent('flow-keys', {
  concurrencyKey: (payload: { key: unknown }) => {
    if (payload.key === 'throw') throw new TypeError('bad payload');
    return payload.key as string;
  },
})
class ComputedKeyEvent extends BaseEvent<{ key: unknown }> {
  async execute(): Promise<void> {}
}

@QueueEvent('flow-throttle')
class ThrottledEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    ran.push({ event: 'throttled', n: this.getPayload().n });
  }
}

@QueueEvent('flow-debounce', { priority: 3 })
class DebouncedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    ran.push({ event: 'debounced', n: this.getPayload().n });
  }
}

@QueueEvent('flow-debounce', { retries: 7 })
class OtherDebouncedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    ran.push({ event: 'other', n: this.getPayload().n });
  }
}

/** Runs until released, on either flow queue. */
class Gate {
  static started: number[] = [];
  static release: () => void = () => undefined;
  static async hold(n: number): Promise<void> {
    Gate.started.push(n);
    await new Promise<void>((resolve) => (Gate.release = resolve));
  }
}

@QueueEvent('flow-debounce-long')
class LongDebouncedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    await Gate.hold(this.getPayload().n);
    ran.push({ event: 'long', n: this.getPayload().n });
  }
}

@QueueEvent('flow-throttle-long')
class LongThrottledEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    await Gate.hold(this.getPayload().n);
  }
}

@QueueEvent('flow-keys-failing', { retries: 1 })
class FailingKeyedEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    throw new Error('partner down');
  }
}

const EVENTS = [
  FailingKeyedEvent,
  PlainEvent,
  AccountEvent,
  TenantEvent,
  ComputedKeyEvent,
  ThrottledEvent,
  DebouncedEvent,
  OtherDebouncedEvent,
  LongDebouncedEvent,
  LongThrottledEvent,
];

async function throttleRows(t: TestApp): Promise<Record<string, unknown>[]> {
  const rows = (await t.dataSource.query(
    'SELECT queue_name, unique_key, job_id, until_at FROM nestjs_workers_throttles ORDER BY queue_name, unique_key',
  )) as Record<string, unknown>[];
  return rows.map(normalizeRow).map((row) => ({ ...row, until_at: Number(row.until_at) }));
}

function payloadOf(row: Record<string, unknown> | undefined): unknown {
  return JSON.parse(String(row?.payload));
}

describe.each(testDatabases())('dispatch flow options ($name)', (database) => {
  let t: TestApp;
  const peers: TestApp[] = [];
  const hooks: WorkerLifecycleEvent[] = [];

  beforeEach(async () => {
    ran.length = 0;
    hooks.length = 0;
    Gate.started = [];
    t = await createTestApp({ events: EVENTS }, {}, database);
  });

  afterEach(async () => {
    Gate.release();
    for (const peer of peers.splice(0)) await peer.close();
    await t.close();
  });

  const listen = (): void => {
    t.app.get(WorkerLifecycle).subscribe((event) => void hooks.push(event), 'test');
  };
  const dispatchedPayloads = (): unknown[] =>
    hooks.filter((hook) => hook.name === 'dispatched').map((hook) => hook.attributes.payload);

  describe('concurrency key', () => {
    it('is kept by the failed store, and a retry from it runs under the same key', async () => {
      await t.events.dispatch(new FailingKeyedEvent({ n: 1 }), { concurrencyKey: 'acct_7' });
      await t.workers.runWorker(runOncePass('flow-keys-failing'));
      const [failed] = await failedRows(t.dataSource);
      expect(failed).toMatchObject({ concurrency_key: 'acct_7' });
      await t.app.get(FailedWorkerService).retry(String(failed!.id));
      expect((await pendingRows(t.dataSource)).map((row) => row.concurrency_key)).toEqual(['acct_7']);
    });

    it('stores the dispatch option, else the @QueueEvent function of the payload, else getConcurrencyKey()', async () => {
      await t.events.dispatch(new PlainEvent({ n: 1 }), { concurrencyKey: 'user-1' });
      await t.events.dispatch(new PlainEvent({ n: 2 }));
      await t.events.dispatch(new AccountEvent({ n: 3, account: 'acct_42' }));
      // The dispatch option wins over the decorator's function.
      await t.events.dispatch(new AccountEvent({ n: 4, account: 'acct_42' }), { concurrencyKey: 'given' });
      // The function found no key: no key, and the method is not asked.
      await t.events.dispatch(new AccountEvent({ n: 5 }));
      await t.events.dispatch(new TenantEvent({ n: 6, tenant: 'tenant-a' }));
      await t.events.dispatch(new TenantEvent({ n: 7, tenant: undefined }));
      // Exact: trailing spaces and case are part of the key, as with unique keys.
      await t.events.dispatch(new PlainEvent({ n: 8 }), { concurrencyKey: 'User-1 ' });
      const rows = await pendingRows(t.dataSource);
      expect(rows.map((row) => row.concurrency_key)).toEqual([
        'user-1',
        null,
        'acct_42',
        'given',
        null,
        'tenant-a',
        null,
        'User-1 ',
      ]);
      await t.workers.runWorker(runOncePass('flow-keys'));
      expect(ran.map((entry) => entry.n).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 8]);
    });

    it('stores each event’s own key with dispatchMany, with and without dispatched listeners', async () => {
      const batch = (offset: number): BaseEvent[] => [
        new AccountEvent({ n: offset, account: `acct_${offset}` }),
        new TenantEvent({ n: offset + 1, tenant: `tenant_${offset}` }),
        new PlainEvent({ n: offset + 2 }),
      ];
      await t.events.dispatchMany(batch(0));
      listen();
      await t.events.dispatchMany(batch(10));
      await t.events.dispatchMany([new PlainEvent({ n: 20 }), new AccountEvent({ n: 21, account: 'x' })], {
        concurrencyKey: 'shared',
      });
      expect((await pendingRows(t.dataSource)).map((row) => row.concurrency_key)).toEqual([
        'acct_0',
        'tenant_0',
        null,
        'acct_10',
        'tenant_10',
        null,
        'shared',
        'shared',
      ]);
      expect(hooks.filter((hook) => hook.name === 'dispatched').map((hook) => hook.attributes.concurrencyKey)).toEqual([
        'acct_10',
        'tenant_10',
        undefined,
        'shared',
        'shared',
      ]);
    });

    it.each([
      ['an empty dispatch option', () => new PlainEvent({ n: 1 }), { concurrencyKey: '' }, 'concurrencyKey'],
      ['a blank dispatch option', () => new PlainEvent({ n: 1 }), { concurrencyKey: '  ' }, 'concurrencyKey'],
      [
        'a 256-character dispatch option',
        () => new PlainEvent({ n: 1 }),
        { concurrencyKey: 'k'.repeat(256) },
        'concurrencyKey',
      ],
      ['a number as the dispatch option', () => new PlainEvent({ n: 1 }), { concurrencyKey: 7 }, 'concurrencyKey'],
      [
        'a decorator function that throws',
        () => new ComputedKeyEvent({ key: 'throw' }),
        {},
        'concurrencyKey of ComputedKeyEvent (@QueueEvent({ concurrencyKey }))',
      ],
      [
        'a decorator function returning ""',
        () => new ComputedKeyEvent({ key: '' }),
        {},
        'concurrencyKey of ComputedKeyEvent (@QueueEvent({ concurrencyKey }))',
      ],
      [
        'a decorator function returning a number',
        () => new ComputedKeyEvent({ key: 12 }),
        {},
        'concurrencyKey of ComputedKeyEvent (@QueueEvent({ concurrencyKey }))',
      ],
      [
        'a decorator function returning null',
        () => new ComputedKeyEvent({ key: null }),
        {},
        'concurrencyKey of ComputedKeyEvent (@QueueEvent({ concurrencyKey }))',
      ],
      [
        'getConcurrencyKey() that throws',
        () => new TenantEvent({ n: 1, tenant: 'throw' }),
        {},
        'concurrencyKey of TenantEvent (getConcurrencyKey())',
      ],
      [
        'getConcurrencyKey() returning 256 characters',
        () => new TenantEvent({ n: 1, tenant: 'é'.repeat(256) }),
        {},
        'concurrencyKey of TenantEvent (getConcurrencyKey())',
      ],
      [
        'getConcurrencyKey() returning an object',
        () => new TenantEvent({ n: 1, tenant: { id: 1 } }),
        {},
        'concurrencyKey of TenantEvent (getConcurrencyKey())',
      ],
    ])(
      'refuses %s with InvalidConcurrencyKeyError naming it, storing nothing',
      async (_label, make, options, field) => {
        const attempt = t.events.dispatch(make(), options as never);
        await expect(attempt).rejects.toThrow(InvalidConcurrencyKeyError);
        await expect(t.events.dispatch(make(), options as never)).rejects.toThrow(
          `Invalid nestjs-workers option "${field}"`,
        );
        // In a batch, one bad key stores none of the batch.
        await expect(t.events.dispatchMany([new PlainEvent({ n: 0 }), make()], options as never)).rejects.toThrow(
          InvalidConcurrencyKeyError,
        );
        expect(await pendingRows(t.dataSource)).toEqual([]);
      },
    );

    it('keeps what the failing function threw as the cause', async () => {
      const error = await t.events.dispatch(new ComputedKeyEvent({ key: 'throw' })).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(InvalidConcurrencyKeyError);
      expect(error).toMatchObject({ eventName: 'ComputedKeyEvent', source: 'decorator' });
      expect((error as Error).message).toContain('TypeError: bad payload');
      expect((error as Error).cause).toBeInstanceOf(TypeError);
    });
  });

  describe('throttleSeconds', () => {
    it('stores the first dispatch of a period and resolves later ones to it, waiting, running or finished', async () => {
      listen();
      const first = await t.events.dispatch(new LongThrottledEvent({ n: 1 }), {
        uniqueKey: 'sync',
        throttleSeconds: 60,
      });
      expect(
        await t.events.dispatch(new LongThrottledEvent({ n: 2 }), { uniqueKey: 'sync', throttleSeconds: 60 }),
      ).toBe(first);
      const run = t.workers.runWorker(runOncePass('flow-throttle-long'));
      await waitFor(() => Gate.started.length === 1);
      expect(
        await t.events.dispatch(new LongThrottledEvent({ n: 3 }), { uniqueKey: 'sync', throttleSeconds: 60 }),
      ).toBe(first);
      Gate.release();
      expect(await run).toMatchObject({ processed: 1 });
      expect(await pendingRows(t.dataSource)).toEqual([]);
      // Finished: the key is free for plain unique dispatch, but the period still answers with its event.
      expect(
        await t.events.dispatch(new LongThrottledEvent({ n: 4 }), { uniqueKey: 'sync', throttleSeconds: 60 }),
      ).toBe(first);
      expect(await pendingRows(t.dataSource)).toEqual([]);
      expect(Gate.started).toEqual([1]);
      expect(dispatchedPayloads()).toEqual([{ n: 1 }]);
      const [window] = await throttleRows(t);
      expect(window).toMatchObject({ queue_name: 'flow-throttle-long', unique_key: 'sync', job_id: Number(first) });
    });

    it('stores a new event once the period is over, and opens a window per key and queue', async () => {
      const options = { uniqueKey: 'k', throttleSeconds: 0.4 };
      const first = await t.events.dispatch(new ThrottledEvent({ n: 1 }), options);
      const otherKey = await t.events.dispatch(new ThrottledEvent({ n: 2 }), { ...options, uniqueKey: 'other' });
      const otherQueue = await t.events.dispatch(new LongThrottledEvent({ n: 3 }), options);
      expect(new Set([first, otherKey, otherQueue]).size).toBe(3);
      await t.workers.runWorker(runOncePass('flow-throttle'));
      expect(await t.events.dispatch(new ThrottledEvent({ n: 4 }), options)).toBe(first);
      await sleep(500);
      const second = await t.events.dispatch(new ThrottledEvent({ n: 5 }), options);
      expect(second).not.toBe(first);
      expect(await t.events.dispatch(new ThrottledEvent({ n: 6 }), options)).toBe(second);
      const rows = await pendingRows(t.dataSource);
      expect(rows.map((row) => [row.queue_name, row.unique_key, (payloadOf(row) as { n: number }).n])).toEqual([
        ['flow-throttle-long', 'k', 3],
        ['flow-throttle', 'k', 5],
      ]);
      const windows = await throttleRows(t);
      expect(windows.map((row) => [row.queue_name, row.unique_key, String(row.job_id)])).toEqual([
        ['flow-throttle', 'k', second],
        ['flow-throttle', 'other', otherKey],
        ['flow-throttle-long', 'k', otherQueue],
      ]);
    });

    it("resolves to the key's holder when the period is over but its event still waits, and may be delayed", async () => {
      const options = { uniqueKey: 'late', throttleSeconds: 0.2 };
      const first = await t.events.dispatch(new ThrottledEvent({ n: 1 }), { ...options, delaySeconds: 60 });
      const [row] = await pendingRows(t.dataSource);
      expect(Number(row!.available_at) - Number(row!.created_at)).toBe(60_000);
      await sleep(300);
      // The unique key still holds: nothing new, and no new window (nothing was dispatched).
      expect(await t.events.dispatch(new ThrottledEvent({ n: 2 }), options)).toBe(first);
      expect(await pendingRows(t.dataSource)).toHaveLength(1);
      expect((await throttleRows(t)).map((window) => String(window.job_id))).toEqual([first]);
    });

    it('stores exactly one event per period when 8 app instances dispatch the key at the same moment', async () => {
      for (let n = 1; n < 8; n++) peers.push(await createPeerApp(t, { events: EVENTS }, database));
      const dispatchers = [t, ...peers];
      for (let round = 0; round < 8; round++) {
        const ids = await Promise.all(
          dispatchers.map((app, n) =>
            app.events.dispatch(new ThrottledEvent({ n }), { uniqueKey: `race-${round % 2}`, throttleSeconds: 60 }),
          ),
        );
        expect(new Set(ids).size).toBe(1);
      }
      expect((await pendingRows(t.dataSource)).map((row) => row.unique_key)).toEqual(['race-0', 'race-1']);
      expect((await throttleRows(t)).map((row) => row.unique_key)).toEqual(['race-0', 'race-1']);
    });

    if (database.type !== 'better-sqlite3') {
      it("works in a caller's transaction: the window commits with it, and rolls back with it", async () => {
        const options = { uniqueKey: 'tx', throttleSeconds: 60 };
        await expect(
          t.dataSource.transaction(async (manager) => {
            await t.events.dispatch(new ThrottledEvent({ n: 1 }), { ...options, manager });
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        expect(await throttleRows(t)).toEqual([]);
        let inside: string | undefined;
        await t.dataSource.transaction(async (manager) => {
          inside = await t.events.dispatch(new ThrottledEvent({ n: 2 }), { ...options, manager });
          expect(await t.events.dispatch(new ThrottledEvent({ n: 3 }), { ...options, manager })).toBe(inside);
        });
        expect(await t.events.dispatch(new ThrottledEvent({ n: 4 }), options)).toBe(inside);
        const rows = await pendingRows(t.dataSource);
        expect(rows.map((row) => payloadOf(row))).toEqual([{ n: 2 }]);
      });
    } else {
      it("refuses a caller's transaction on SQLite, storing nothing", async () => {
        await expect(
          t.dataSource.transaction((manager) =>
            t.events.dispatch(new ThrottledEvent({ n: 1 }), { uniqueKey: 'tx', throttleSeconds: 60, manager }),
          ),
        ).rejects.toThrow(WorkerError);
        expect(await throttleRows(t)).toEqual([]);
      });
    }
  });

  describe('debounceSeconds', () => {
    it('gives a waiting event the new payload and due time, keeping its id; the last payload runs once', async () => {
      listen();
      const options = { uniqueKey: 'search-index', debounceSeconds: 30 };
      const first = await t.events.dispatch(new DebouncedEvent({ n: 1 }), options);
      const [inserted] = await pendingRows(t.dataSource);
      expect(Number(inserted!.available_at) - Number(inserted!.created_at)).toBe(30_000);
      await sleep(20);
      expect(await t.events.dispatch(new DebouncedEvent({ n: 2 }), options)).toBe(first);
      // Another event class of the queue takes the key's event over: its name, retries and priority too.
      expect(await t.events.dispatch(new OtherDebouncedEvent({ n: 3 }), { ...options, priority: -1 })).toBe(first);
      const rows = await pendingRows(t.dataSource);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        id: Number(first),
        event_name: 'OtherDebouncedEvent',
        retries: 7,
        priority: -1,
        unique_key: 'search-index',
      });
      expect(payloadOf(rows[0])).toEqual({ n: 3 });
      expect(Number(rows[0]!.available_at)).toBeGreaterThan(Number(inserted!.available_at));
      expect(Number(rows[0]!.available_at) - Number(rows[0]!.updated_at)).toBe(30_000);
      // Only the event that was added is announced.
      expect(dispatchedPayloads()).toEqual([{ n: 1 }]);
      // Not due yet: a debounce of 0 makes it due at once, and the last payload runs once.
      expect(await t.workers.runWorker(runOncePass('flow-debounce'))).toMatchObject({ processed: 0 });
      expect(await t.events.dispatch(new DebouncedEvent({ n: 4 }), { ...options, debounceSeconds: 0 })).toBe(first);
      expect(await t.workers.runWorker(runOncePass('flow-debounce'))).toMatchObject({ processed: 1 });
      expect(ran).toEqual([{ event: 'debounced', n: 4 }]);
    });

    it('starts a waiting event afresh: attempts and error cleared, an expired lease dropped', async () => {
      const options = { uniqueKey: 'retrying', debounceSeconds: 0 };
      const id = await t.events.dispatch(new DebouncedEvent({ n: 1 }), options);
      // As a retry that waits after two attempts, whose last lease (of a worker now gone) expired.
      await execute(
        t.dataSource,
        "UPDATE nestjs_workers SET attempts = 2, error = 'boom', lease_token = 'gone', locked_by = 'w', " +
          'lease_expires_at = 1 WHERE id = ?',
        [id],
      );
      expect(await t.events.dispatch(new DebouncedEvent({ n: 2 }), options)).toBe(id);
      expect((await pendingRows(t.dataSource))[0]).toMatchObject({
        attempts: 0,
        error: null,
        lease_token: null,
        locked_by: null,
        lease_expires_at: null,
      });
      expect(await t.workers.runWorker(runOncePass('flow-debounce'))).toMatchObject({ processed: 1 });
      expect(ran).toEqual([{ event: 'debounced', n: 2 }]);
    });

    it('detaches a running event from the key, leaving its lease, and stores the new one', async () => {
      listen();
      const options = { uniqueKey: 'export', debounceSeconds: 0 };
      const running = await t.events.dispatch(new LongDebouncedEvent({ n: 1 }), options);
      const run = t.workers.runWorker(runOncePass('flow-debounce-long', { concurrency: 1 }));
      await waitFor(() => Gate.started.length === 1);
      const [leased] = await pendingRows(t.dataSource);
      const next = await t.events.dispatch(new LongDebouncedEvent({ n: 2 }), options);
      expect(next).not.toBe(running);
      // A later dispatch replaces the new waiting one, not the running one.
      expect(await t.events.dispatch(new LongDebouncedEvent({ n: 3 }), options)).toBe(next);
      const rows = await pendingRows(t.dataSource);
      expect(rows.map((row) => [String(row.id), row.unique_key, payloadOf(row)])).toEqual([
        [running, null, { n: 1 }],
        [next, 'export', { n: 3 }],
      ]);
      expect(rows[0]).toMatchObject({ lease_token: leased!.lease_token, lease_expires_at: leased!.lease_expires_at });
      Gate.release();
      expect(await run).toMatchObject({ processed: 1, failed: 0 });
      expect((await pendingRows(t.dataSource)).map((row) => String(row.id))).toEqual([next]);
      expect(await failedRows(t.dataSource)).toEqual([]);
      expect(dispatchedPayloads()).toEqual([{ n: 1 }, { n: 2 }]);
    });

    it('leaves exactly one waiting event when 8 app instances debounce the key at the same moment', async () => {
      for (let n = 1; n < 8; n++) peers.push(await createPeerApp(t, { events: EVENTS }, database));
      const dispatchers = [t, ...peers];
      for (let round = 0; round < 6; round++) {
        const ids = await Promise.all(
          dispatchers.map((app, n) =>
            app.events.dispatch(new DebouncedEvent({ n: round * 10 + n }), { uniqueKey: 'burst', debounceSeconds: 60 }),
          ),
        );
        expect(new Set(ids).size).toBe(1);
        const rows = await pendingRows(t.dataSource);
        expect(rows).toHaveLength(1);
        expect(String(rows[0]!.id)).toBe(ids[0]);
        // The payload of one of this round's dispatches (the last to commit).
        expect((payloadOf(rows[0]) as { n: number }).n).toBeGreaterThanOrEqual(round * 10);
      }
      // Sequential dispatches: the last one's payload is the one kept.
      await peers[3]!.events.dispatch(new DebouncedEvent({ n: 99 }), { uniqueKey: 'burst', debounceSeconds: 60 });
      expect(payloadOf((await pendingRows(t.dataSource))[0])).toEqual({ n: 99 });
    });

    it('leaves the running event and exactly one waiting one when 8 app instances debounce it at once', async () => {
      for (let n = 1; n < 8; n++) peers.push(await createPeerApp(t, { events: EVENTS }, database));
      const options = { uniqueKey: 'busy', debounceSeconds: 60 };
      const running = await t.events.dispatch(new LongDebouncedEvent({ n: 0 }), { ...options, debounceSeconds: 0 });
      const run = t.workers.runWorker(runOncePass('flow-debounce-long', { concurrency: 1 }));
      await waitFor(() => Gate.started.length === 1);
      const ids = await Promise.all(
        [t, ...peers].map((app, n) => app.events.dispatch(new LongDebouncedEvent({ n: n + 1 }), options)),
      );
      expect(new Set(ids).size).toBe(1);
      expect(ids[0]).not.toBe(running);
      const rows = await pendingRows(t.dataSource);
      expect(rows.map((row) => [String(row.id), row.unique_key])).toEqual([
        [running, null],
        [ids[0], 'busy'],
      ]);
      expect((payloadOf(rows[1]) as { n: number }).n).toBeGreaterThan(0);
      Gate.release();
      expect(await run).toMatchObject({ processed: 1, failed: 0 });
    });

    if (database.type !== 'better-sqlite3') {
      it("works in a caller's transaction, and a rollback keeps the payload that was there", async () => {
        const options = { uniqueKey: 'tx', debounceSeconds: 60 };
        const id = await t.events.dispatch(new DebouncedEvent({ n: 1 }), options);
        await expect(
          t.dataSource.transaction(async (manager) => {
            expect(await t.events.dispatch(new DebouncedEvent({ n: 2 }), { ...options, manager })).toBe(id);
            throw new Error('roll back');
          }),
        ).rejects.toThrow('roll back');
        expect(payloadOf((await pendingRows(t.dataSource))[0])).toEqual({ n: 1 });
        await t.dataSource.transaction(async (manager) => {
          expect(await t.events.dispatch(new DebouncedEvent({ n: 3 }), { ...options, manager })).toBe(id);
          const fresh = await t.events.dispatch(new DebouncedEvent({ n: 4 }), {
            ...options,
            uniqueKey: 'new',
            manager,
          });
          expect(fresh).not.toBe(id);
        });
        expect((await pendingRows(t.dataSource)).map((row) => payloadOf(row))).toEqual([{ n: 3 }, { n: 4 }]);
      });
    }
  });

  describe('bad input', () => {
    it.each([
      ['throttleSeconds without uniqueKey', { throttleSeconds: 5 }, 'throttleSeconds'],
      ['debounceSeconds without uniqueKey', { debounceSeconds: 5 }, 'debounceSeconds'],
      ['both', { uniqueKey: 'k', throttleSeconds: 5, debounceSeconds: 5 }, 'throttleSeconds'],
      ['debounceSeconds with delaySeconds', { uniqueKey: 'k', debounceSeconds: 5, delaySeconds: 1 }, 'debounceSeconds'],
      ['debounceSeconds with runAt', { uniqueKey: 'k', debounceSeconds: 5, runAt: new Date() }, 'debounceSeconds'],
      ['throttleSeconds 0', { uniqueKey: 'k', throttleSeconds: 0 }, 'throttleSeconds'],
      ['throttleSeconds -1', { uniqueKey: 'k', throttleSeconds: -1 }, 'throttleSeconds'],
      ['throttleSeconds NaN', { uniqueKey: 'k', throttleSeconds: Number.NaN }, 'throttleSeconds'],
      ['throttleSeconds Infinity', { uniqueKey: 'k', throttleSeconds: Infinity }, 'throttleSeconds'],
      ["throttleSeconds '5'", { uniqueKey: 'k', throttleSeconds: '5' }, 'throttleSeconds'],
      ['throttleSeconds 1e11', { uniqueKey: 'k', throttleSeconds: 1e11 }, 'throttleSeconds'],
      ['debounceSeconds -0.5', { uniqueKey: 'k', debounceSeconds: -0.5 }, 'debounceSeconds'],
      ['debounceSeconds NaN', { uniqueKey: 'k', debounceSeconds: Number.NaN }, 'debounceSeconds'],
      ['debounceSeconds -Infinity', { uniqueKey: 'k', debounceSeconds: -Infinity }, 'debounceSeconds'],
      ['debounceSeconds null', { uniqueKey: 'k', debounceSeconds: null }, 'debounceSeconds'],
    ])(
      'refuses %s with InvalidDispatchFlowError naming the option, storing nothing',
      async (_label, options, field) => {
        const attempt = t.events.dispatch(new ThrottledEvent({ n: 1 }), options as never);
        await expect(attempt).rejects.toThrow(InvalidDispatchFlowError);
        await expect(t.events.dispatch(new ThrottledEvent({ n: 1 }), options as never)).rejects.toThrow(
          `Invalid nestjs-workers option "${field}"`,
        );
        expect(await pendingRows(t.dataSource)).toEqual([]);
        expect(await throttleRows(t)).toEqual([]);
      },
    );

    it.each(['throttleSeconds', 'debounceSeconds'])(
      'refuses %s through a row store that cannot keep the key’s window, storing nothing',
      async (option) => {
        const creator = new TypeOrmWorkerCreator(t.dataSource);
        // An IWorkerRowStore of its own (a wrapper), without the optional throttled and debounced inserts.
        const store: IWorkerRowStore = {
          clock: creator.clock,
          enforcesUniqueKeys: true,
          createWorkerModel: (data) => creator.createWorkerModel(data),
          createFailedWorkerModel: (data) => creator.createFailedWorkerModel(data),
          insertModel: (model, manager) => creator.insertModel(model, manager),
          insertModels: (models, manager) => creator.insertModels(models, manager),
          insertNewRows: (rows, manager) => creator.insertNewRows(rows, manager),
        };
        const events = new EventService({ workerCreator: store, events: EVENTS });
        await expect(events.dispatch(new ThrottledEvent({ n: 1 }), { uniqueKey: 'k', [option]: 1 })).rejects.toThrow(
          `dispatch(event, { ${option} }) needs the TypeORM worker creator`,
        );
        expect(await pendingRows(t.dataSource)).toEqual([]);
        // A plain keyed dispatch still works through it.
        expect(await events.dispatch(new ThrottledEvent({ n: 2 }), { uniqueKey: 'k' })).toBeDefined();
      },
    );

    it.each(['throttleSeconds', 'debounceSeconds'])('refuses %s in dispatchMany', async (option) => {
      await expect(t.events.dispatchMany([new ThrottledEvent({ n: 1 })], { [option]: 1 })).rejects.toThrow(
        `Invalid nestjs-workers option "${option}"`,
      );
      expect(await pendingRows(t.dataSource)).toEqual([]);
    });
  });
});

describe('@QueueEvent flow options', () => {
  it.each([
    ['keyConcurrency 0', { keyConcurrency: 0 }, 'keyConcurrency'],
    ['keyConcurrency 1.5', { keyConcurrency: 1.5 }, 'keyConcurrency'],
    ["keyConcurrency '2'", { keyConcurrency: '2' }, 'keyConcurrency'],
    ['keyConcurrency NaN', { keyConcurrency: Number.NaN }, 'keyConcurrency'],
    ["concurrencyKey 'userId'", { concurrencyKey: 'userId' }, 'concurrencyKey'],
  ])('refuses %s when the class is decorated, naming the class and the option', (_label, options, option) => {
    const decorate = (): void => {
      @QueueEvent('flow-bad', options as never)
      class BadFlowEvent extends BaseEvent<null> {
        async execute(): Promise<void> {}
      }
      void BadFlowEvent;
    };
    expect(decorate).toThrow(InvalidEventFlowOptionsError);
    expect(decorate).toThrow(`Invalid nestjs-workers option "@QueueEvent() on BadFlowEvent: options.${option}"`);
  });

  it('refuses them when a class whose metadata was set otherwise is registered', () => {
    class HandMadeEvent extends BaseEvent<null> {
      async execute(): Promise<void> {}
    }
    SetMetadata(QUEUE_EVENT_METADATA, { queueName: 'flow-bad', keyConcurrency: -1 })(HandMadeEvent);
    expect(() => new EventService({ events: [HandMadeEvent] })).toThrow(
      'Invalid nestjs-workers option "@QueueEvent() on HandMadeEvent: options.keyConcurrency"',
    );
    expect(() => new EventService({ events: [HandMadeEvent] })).toThrow(InvalidWorkerOptionsError);
  });

  it('accepts a key function and a positive keyConcurrency, and keeps them in the event options', () => {
    const service = new EventService({ events: [AccountEvent] });
    const options = service.getEventOptions('AccountEvent');
    expect(options?.keyConcurrency).toBe(2);
    expect(typeof options?.concurrencyKey).toBe('function');
  });
});
