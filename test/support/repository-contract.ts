/**
 * The contract of IWorkerQueueRepository as WorkerService relies on it, as one suite:
 * describeQueueRepository(name, capabilities, make) registers it for one repository. A part of the
 * contract a repository does not implement (its capabilities say which) is not registered for it;
 * the first test checks that the capabilities it declares match the methods it has.
 */
import {
  BaseEvent,
  type ClaimRequest,
  type DispatchOptions,
  EventCancelledError,
  type IEventService,
  type IWorkerAttributes,
  type IWorkerCreator,
  type IWorkerModel,
  type IWorkerQueueRepository,
  type LeaseRenewal,
  LeaseLostError,
  QueueEvent,
} from '../../lib/index.js';
import { sleep } from './test-app.js';

export const CONTRACT_QUEUE = 'contract';
export const OTHER_QUEUE = 'contract-other';

@QueueEvent(CONTRACT_QUEUE, { retries: 3 })
export class ContractEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

@QueueEvent(OTHER_QUEUE, { retries: 3 })
export class OtherQueueEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

/** The event classes the suite dispatches: register them with the event service of the fixture. */
export const CONTRACT_EVENTS = [ContractEvent, OtherQueueEvent];

/** What the suite needs around one fresh repository (empty store). */
export interface QueueRepositoryFixture {
  repository: IWorkerQueueRepository;
  /** Stores the suite's rows, through the creator the repository reads. */
  events: Pick<IEventService, 'dispatch'>;
  /** Builds the failed-store copies handed to failWorker(s). */
  creator: IWorkerCreator;
  /** The rows of the failed store. */
  failedRows(): Promise<IWorkerAttributes[]>;
  /** Capability `peers`: another repository on connections of its own to the same store (another process). */
  openPeer?(): Promise<IWorkerQueueRepository>;
  /** Capability `atomicFailedMove`: a failed-store copy of `data` that the store refuses to insert. */
  unstorableFailedCopy?(data: IWorkerAttributes): IWorkerModel;
  close(): Promise<void>;
}

/** Which parts of the contract a repository implements; the others are not registered for it. */
export interface QueueRepositoryCapabilities {
  /**
   * Leases held in the store: a claimed row is not claimable while its lease holds, becomes
   * claimable again when it expires, and every write is fenced by the claim's lease token
   * (LeaseLostError, 'lease-lost', `lost`). renewLeases() extends them and reports.
   * Without: a claimed row is held by this repository object until its outcome is written.
   */
  leases: boolean;
  /** Claims running at the same time on one repository never take the same row. */
  concurrentClaims: boolean;
  /** Priority and delayed dispatch (delaySeconds, runAt) decide when and in which order rows are claimed. */
  scheduling: boolean;
  /** openPeer(): two repositories on their own connections share the rows (needs `leases`). */
  peers: boolean;
  /** cancelWorker(), by id and by unique key. */
  cancel: boolean;
  /** completeWorkers(), retryWorkers() and failWorkers(). */
  batchWrites: boolean;
  /** failWorker(s) insert the copies and delete the rows in one transaction (unstorableFailedCopy()). */
  atomicFailedMove: boolean;
  /** getQueueStatistics(), and the failed store counted by getQueueHealth(). */
  statistics: boolean;
  /** currentTime(): the store's clock. */
  databaseClock: boolean;
}

/** A lease that ends before EXPIRED_AFTER_MS has passed. */
const SHORT_LEASE_MS = 250;
const EXPIRED_AFTER_MS = 450;
const LONG_LEASE_MS = 60_000;
/** A due time that comes before DUE_AFTER_MS has passed, but not before the next few statements ran. */
const SOON_MS = 2_000;
const DUE_AFTER_MS = 2_300;

/** Registers the contract suite for the repository `make()` returns (a fresh one per test). */
export function describeQueueRepository(
  name: string,
  capabilities: QueueRepositoryCapabilities,
  make: () => Promise<QueueRepositoryFixture>,
): void {
  const {
    leases,
    concurrentClaims,
    scheduling,
    peers,
    cancel,
    batchWrites,
    atomicFailedMove,
    statistics,
    databaseClock,
  } = capabilities;

  describe(`queue repository contract: ${name}`, () => {
    let f: QueueRepositoryFixture;

    beforeEach(async () => {
      f = await make();
    });

    afterEach(async () => {
      await f.close();
    });

    const idOf = (model: IWorkerModel): string => model.getWorkerData()!.id!;
    const nOf = (data: IWorkerAttributes | null): number => (data!.payload as { n: number }).n;
    const nsOf = (models: IWorkerModel[]): number[] => models.map((model) => nOf(model.getWorkerData()));

    /** Now as the worker reads it: the repository's clock, else the process's. */
    const now = async (): Promise<number> => (f.repository.currentTime ? f.repository.currentTime() : Date.now());

    /** Dispatches payloads n = first … first + count - 1, one by one (so in that order); resolves to their ids. */
    async function dispatch(count: number, first = 0, options: DispatchOptions = {}): Promise<string[]> {
      const ids: string[] = [];
      for (let n = first; n < first + count; n++)
        ids.push((await f.events.dispatch(new ContractEvent({ n }), options))!);
      return ids;
    }

    async function claim(
      request: Partial<ClaimRequest> = {},
      repository: IWorkerQueueRepository = f.repository,
    ): Promise<IWorkerModel[]> {
      return repository.claimWorkers({
        queueName: CONTRACT_QUEUE,
        limit: 100,
        workerId: 'worker-a',
        leaseMs: LONG_LEASE_MS,
        dueBy: new Date(await now()),
        ...request,
      });
    }

    async function pending(): Promise<IWorkerAttributes[]> {
      return (await f.repository.getWorkers()).map((model) => model.getWorkerData()!);
    }

    async function pendingRow(id: string): Promise<IWorkerAttributes | undefined> {
      return (await pending()).find((data) => data.id === id);
    }

    async function retryLater(model: IWorkerModel, error = 'boom', retries = 3): Promise<Date> {
      const availableAt = new Date((await now()) + 60_000);
      await f.repository.retryWorker(model, { error, retries, availableAt });
      return availableAt;
    }

    function failedCopy(model: IWorkerModel, error = 'final'): IWorkerModel {
      return f.creator.createFailedWorkerModel({ ...model.getWorkerData()!, error, failedAt: new Date() });
    }

    /** `model`'s lease (short) expires and worker B claims its row (the oldest claimable): `model` has lost it. */
    async function loseLease(model: IWorkerModel): Promise<IWorkerModel> {
      await sleep(EXPIRED_AFTER_MS);
      const [holder] = await claim({ limit: 1, workerId: 'worker-b' });
      expect(holder && idOf(holder)).toBe(idOf(model));
      return holder!;
    }

    function renewal(result: LeaseRenewal | string[] | void): LeaseRenewal {
      if (Array.isArray(result)) return { cancelled: result, lost: [] };
      return result ?? { cancelled: [], lost: [] };
    }

    it('has exactly the optional methods its capabilities declare', () => {
      const has = (method: keyof IWorkerQueueRepository): boolean => typeof f.repository[method] === 'function';
      expect({
        batchWrites: [has('completeWorkers'), has('retryWorkers'), has('failWorkers')],
        cancel: has('cancelWorker'),
        statistics: has('getQueueStatistics'),
        databaseClock: has('currentTime'),
        peers: typeof f.openPeer === 'function',
        atomicFailedMove: typeof f.unstorableFailedCopy === 'function',
      }).toEqual({
        batchWrites: [batchWrites, batchWrites, batchWrites],
        cancel,
        statistics,
        databaseClock,
        peers,
        atomicFailedMove,
      });
      if (peers) expect(leases).toBe(true);
    });

    describe('getWorkers', () => {
      it('lists the pending rows of every queue with their attributes', async () => {
        const [id] = await dispatch(1);
        await f.events.dispatch(new OtherQueueEvent({ n: 1 }));
        const rows = await pending();
        expect(rows).toHaveLength(2);
        expect(rows.find((data) => data.id === id)).toMatchObject({
          payload: { n: 0 },
          attempts: 0,
          retries: 3,
          queueName: CONTRACT_QUEUE,
          eventName: 'ContractEvent',
          createdAt: expect.any(Date),
          updatedAt: expect.any(Date),
        });
        expect(rows.map((data) => data.queueName).sort()).toEqual([CONTRACT_QUEUE, OTHER_QUEUE]);
      });
    });

    describe('claimWorkers', () => {
      it('claims at most `limit` due rows, oldest first, counting the attempt', async () => {
        const ids = await dispatch(5);
        const first = await claim({ limit: 3 });
        expect(nsOf(first)).toEqual([0, 1, 2]);
        expect(first.map((model) => model.getWorkerData()!.attempts)).toEqual([1, 1, 1]);
        expect((await pending()).map((data) => [data.id, data.attempts])).toEqual(
          ids.map((id, n) => [id, n < 3 ? 1 : 0]),
        );
        expect(nsOf(await claim({ limit: 10 }))).toEqual([3, 4]);
        expect(await claim()).toEqual([]);
      });

      it('claims only rows of the queue it is asked for', async () => {
        await f.events.dispatch(new OtherQueueEvent({ n: 0 }));
        await dispatch(1, 1);
        await f.events.dispatch(new OtherQueueEvent({ n: 2 }));
        expect(nsOf(await claim())).toEqual([1]);
        expect((await pending()).filter((data) => data.queueName === OTHER_QUEUE).map((data) => data.attempts)).toEqual(
          [0, 0],
        );
        expect(nsOf(await claim({ queueName: OTHER_QUEUE }))).toEqual([0, 2]);
      });

      it('claims a retried row only once `dueBy` reaches its due time', async () => {
        await dispatch(1);
        const [model] = await claim();
        const availableAt = new Date((await now()) + SOON_MS);
        await f.repository.retryWorker(model!, { error: 'boom', retries: 3, availableAt });
        expect(await claim()).toEqual([]);
        await sleep(DUE_AFTER_MS);
        expect(await claim({ dueBy: new Date(availableAt.getTime() - 1) })).toEqual([]);
        const [again] = await claim();
        expect(again?.getWorkerData()).toMatchObject({ id: idOf(model!), attempts: 2, error: 'boom' });
      });

      if (concurrentClaims) {
        it('never hands one row to two of several concurrent claims', async () => {
          const ids = await dispatch(12);
          const claims = await Promise.all([1, 2, 3, 4].map(() => claim({ limit: 4 })));
          const claimed = [...claims.flat(), ...(await claim())];
          expect(claimed.map(idOf).sort()).toEqual([...ids].sort());
          expect(claimed.map((model) => model.getWorkerData()!.attempts)).toEqual(ids.map(() => 1));
          expect(await claim()).toEqual([]);
        });
      }

      if (scheduling) {
        it('claims no row that became due after `dueBy`: delayed, or dispatched after the pass began', async () => {
          const [before] = await dispatch(1, 0);
          await dispatch(1, 1, { runAt: new Date((await now()) + SOON_MS) });
          await dispatch(1, 2, { delaySeconds: 60 });
          await sleep(20);
          const passBegan = new Date(await now());
          await sleep(20);
          await dispatch(1, 3);
          expect((await claim({ dueBy: passBegan })).map(idOf)).toEqual([before]);
          await sleep(DUE_AFTER_MS);
          // Row 3 was due before row 1.
          expect(nsOf(await claim())).toEqual([3, 1]);
        });

        /** Five rows whose claim order is 2, 1, 0, 3, 4: priority first, then due time, then id. */
        const dispatchInMixedOrder = async (): Promise<number[]> => {
          const past = new Date((await now()) - 10_000);
          await dispatch(1, 0);
          await dispatch(1, 1, { runAt: past });
          await dispatch(1, 2, { priority: -1 });
          await dispatch(1, 3);
          await dispatch(1, 4, { priority: 5, runAt: new Date(past.getTime() - 10_000) });
          return [2, 1, 0, 3, 4];
        };

        it('claims by priority, then due time, then id, one row per claim', async () => {
          const order = await dispatchInMixedOrder();
          const oneByOne: number[] = [];
          for (let claims = 0; claims < order.length; claims++) oneByOne.push(...nsOf(await claim({ limit: 1 })));
          expect(oneByOne).toEqual(order);
        });

        it('returns the rows of one claim in claim order', async () => {
          const order = await dispatchInMixedOrder();
          expect(nsOf(await claim({ limit: 3 }))).toEqual(order.slice(0, 3));
          expect(nsOf(await claim())).toEqual([3, 4]);
        });
      }

      if (peers) {
        it('never hands one row to claims of two repositories on connections of their own', async () => {
          const peer = await f.openPeer!();
          const ids = await dispatch(20);
          const claimed: IWorkerModel[] = [];
          for (let round = 0; round < 10 && claimed.length < ids.length; round++) {
            const repositories = [f.repository, peer, f.repository, peer];
            const claims = await Promise.all(
              repositories.map((repository, index) => claim({ limit: 3, workerId: `worker-${index}` }, repository)),
            );
            claimed.push(...claims.flat());
          }
          expect(claimed.map(idOf).sort()).toEqual([...ids].sort());
          expect(claimed.map((model) => model.getWorkerData()!.attempts)).toEqual(ids.map(() => 1));
          expect(await claim({}, peer)).toEqual([]);
        });
      }

      if (leases) {
        it('never claims a row whose lease holds, however late `dueBy` is', async () => {
          await dispatch(2);
          expect(await claim()).toHaveLength(2);
          expect(await claim({ workerId: 'worker-b', dueBy: new Date((await now()) + 3_600_000) })).toEqual([]);
        });

        it('claims a row whose lease expired again, in its original place, counting the attempt', async () => {
          const [first] = await dispatch(1);
          expect((await claim({ leaseMs: SHORT_LEASE_MS })).map(idOf)).toEqual([first]);
          await dispatch(3, 1);
          await sleep(EXPIRED_AFTER_MS);
          const [again] = await claim({ limit: 1, workerId: 'worker-b' });
          expect(again?.getWorkerData()).toMatchObject({ id: first, attempts: 2 });
          expect(nsOf(await claim({ workerId: 'worker-b' }))).toEqual([1, 2, 3]);
        });
      } else {
        it('never claims a row it already handed out until that row is given back (no leases)', async () => {
          await dispatch(2);
          const [held] = await claim({ limit: 1 });
          expect(nsOf(await claim({ workerId: 'worker-b' }))).toEqual([1]);
          expect(await claim({ workerId: 'worker-b' })).toEqual([]);
          await f.repository.releaseWorkers([held!]);
          expect(nsOf(await claim({ workerId: 'worker-b' }))).toEqual([0]);
        });
      }

      if (cancel) {
        it('never claims a cancelled row, waiting or running, not even after its lease expired', async () => {
          const [waiting, running, left] = await dispatch(3);
          expect(await f.repository.cancelWorker!({ id: waiting! }, await now())).toMatchObject({ wasRunning: false });
          // A lease that holds while it is cancelled (so it is running), and has expired after DUE_AFTER_MS.
          const [model] = await claim({ limit: 1, leaseMs: SOON_MS });
          expect(idOf(model!)).toBe(running);
          expect(await f.repository.cancelWorker!({ id: running! }, await now())).toMatchObject({ wasRunning: true });
          await sleep(DUE_AFTER_MS);
          expect((await claim({ workerId: 'worker-b' })).map(idOf)).toEqual([left]);
          expect(await claim({ workerId: 'worker-b' })).toEqual([]);
        });
      }
    });

    describe('countDueWorkers', () => {
      it('counts the due rows of the queue no claim holds, no further than `limit`', async () => {
        await dispatch(5);
        await f.events.dispatch(new OtherQueueEvent({ n: 9 }));
        const dueBy = async (): Promise<Date> => new Date(await now());
        expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, await dueBy())).toBe(5);
        expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, await dueBy(), 3)).toBe(3);
        const [later, again] = await claim({ limit: 2 });
        expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, await dueBy())).toBe(3);
        await retryLater(later!);
        expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, await dueBy())).toBe(3);
        const retry = { error: 'boom', retries: 3, availableAt: new Date((await now()) - 1_000) };
        await f.repository.retryWorker(again!, retry);
        expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, await dueBy())).toBe(4);
        expect(await f.repository.countDueWorkers(OTHER_QUEUE, await dueBy())).toBe(1);
      });

      if (leases) {
        it('counts a row whose lease expired as due again', async () => {
          await dispatch(2);
          await claim({ limit: 1 });
          await claim({ limit: 1, leaseMs: SHORT_LEASE_MS });
          expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, new Date(await now()))).toBe(0);
          await sleep(EXPIRED_AFTER_MS);
          expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, new Date(await now()))).toBe(1);
        });
      }

      if (scheduling) {
        it('counts a delayed row only from its due time', async () => {
          await dispatch(1, 0, { runAt: new Date((await now()) + SOON_MS) });
          await dispatch(1, 1, { delaySeconds: 60 });
          await dispatch(1, 2);
          expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, new Date(await now()))).toBe(1);
          await sleep(DUE_AFTER_MS);
          expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, new Date(await now()))).toBe(2);
        });
      }

      if (cancel) {
        it('does not count cancelled rows', async () => {
          const [, waiting] = await dispatch(3);
          const [running] = await claim({ limit: 1 });
          await f.repository.cancelWorker!({ id: waiting! }, await now());
          await f.repository.cancelWorker!({ id: idOf(running!) }, await now());
          expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, new Date(await now()))).toBe(1);
        });
      }
    });

    describe('completeWorker / completeWorkers', () => {
      it('completeWorker() deletes the claimed row, and only it', async () => {
        const [, kept] = await dispatch(2);
        const [model] = await claim({ limit: 1 });
        await f.repository.completeWorker(model!);
        expect((await pending()).map((data) => data.id)).toEqual([kept]);
      });

      if (leases) {
        it('completeWorker() of a row claimed again under another lease throws LeaseLostError and deletes nothing', async () => {
          const [id] = await dispatch(1);
          const [lost] = await claim({ leaseMs: SHORT_LEASE_MS });
          const holder = await loseLease(lost!);
          await expect(f.repository.completeWorker(lost!)).rejects.toBeInstanceOf(LeaseLostError);
          expect(await pendingRow(id!)).toMatchObject({ attempts: 2 });
          await f.repository.completeWorker(holder);
          expect(await pending()).toEqual([]);
        });
      }

      if (batchWrites) {
        it('completeWorkers() deletes the claimed rows and reports none lost', async () => {
          const [, , kept] = await dispatch(3);
          const claimed = await claim({ limit: 2 });
          expect(await f.repository.completeWorkers!(claimed)).toEqual([]);
          expect((await pending()).map((data) => data.id)).toEqual([kept]);
        });
      }

      if (batchWrites && leases) {
        it('completeWorkers() leaves a row claimed again under another lease and reports it lost', async () => {
          await dispatch(3);
          const held = await claim({ limit: 2 });
          const [lost] = await claim({ limit: 1, leaseMs: SHORT_LEASE_MS });
          const holder = await loseLease(lost!);
          expect(await f.repository.completeWorkers!([lost!, ...held])).toEqual([idOf(lost!)]);
          expect((await pending()).map((data) => [data.id, data.attempts])).toEqual([[idOf(lost!), 2]]);
          expect(await f.repository.completeWorkers!([holder])).toEqual([]);
          expect(await pending()).toEqual([]);
        });
      }
    });

    describe('retryWorker / retryWorkers', () => {
      it('retryWorker() records the error and retries, keeps the attempt, and makes the row due at `availableAt`', async () => {
        const [id] = await dispatch(1);
        const [model] = await claim();
        const availableAt = new Date((await now()) + SOON_MS);
        await f.repository.retryWorker(model!, { error: 'Error: boom\n    at somewhere', retries: 7, availableAt });
        expect(await pendingRow(id!)).toMatchObject({
          attempts: 1,
          retries: 7,
          error: 'Error: boom\n    at somewhere',
        });
        expect(await claim()).toEqual([]);
        await sleep(DUE_AFTER_MS);
        expect(await claim({ dueBy: new Date(availableAt.getTime() - 1) })).toEqual([]);
        const [again] = await claim();
        expect(again?.getWorkerData()).toMatchObject({ id, attempts: 2, retries: 7 });
      });

      if (leases) {
        it('retryWorker() of a row claimed again under another lease throws LeaseLostError and changes nothing', async () => {
          const [id] = await dispatch(1);
          const [lost] = await claim({ leaseMs: SHORT_LEASE_MS });
          await loseLease(lost!);
          const retry = { error: 'late', retries: 9, availableAt: new Date((await now()) + 60_000) };
          await expect(f.repository.retryWorker(lost!, retry)).rejects.toBeInstanceOf(LeaseLostError);
          const row = await pendingRow(id!);
          expect(row).toMatchObject({ attempts: 2, retries: 3 });
          expect(row?.error ?? undefined).toBeUndefined();
          expect(await claim({ workerId: 'worker-c' })).toEqual([]);
        });
      }

      if (leases && cancel) {
        it('retryWorker() of a row cancelled while it ran throws EventCancelledError and removes the row', async () => {
          const [id] = await dispatch(1);
          const [model] = await claim();
          await f.repository.cancelWorker!({ id: id! }, await now());
          const retry = { error: 'boom', retries: 3, availableAt: new Date(await now()) };
          await expect(f.repository.retryWorker(model!, retry)).rejects.toBeInstanceOf(EventCancelledError);
          expect(await pending()).toEqual([]);
          expect(await f.repository.countDueWorkers(CONTRACT_QUEUE, new Date((await now()) + 60_000))).toBe(0);
        });
      }

      if (batchWrites) {
        it('retryWorkers() gives every entry its own error, due time and retries', async () => {
          const ids = await dispatch(3);
          const claimed = await claim();
          const base = await now();
          const outcomes = await f.repository.retryWorkers!(
            claimed.map((model, n) => ({
              model,
              retry: {
                error: `error ${n}`,
                retries: 4 + n,
                availableAt: new Date(base + [-2_000, -1_000, 60_000][n]!),
              },
            })),
          );
          expect(outcomes).toEqual(new Map(ids.map((id) => [id, 'retried'])));
          expect((await pending()).map((data) => [data.error, data.retries, data.attempts])).toEqual([
            ['error 0', 4, 1],
            ['error 1', 5, 1],
            ['error 2', 6, 1],
          ]);
          expect(nsOf(await claim())).toEqual([0, 1]);
        });
      }

      if (batchWrites && leases && cancel) {
        it("retryWorkers() reports each entry's outcome: retried, lease-lost (untouched) or cancelled (removed)", async () => {
          const [retriedId, cancelledId, lostId] = await dispatch(3);
          const held = await claim({ limit: 2 });
          const [lost] = await claim({ limit: 1, leaseMs: SHORT_LEASE_MS });
          await loseLease(lost!);
          await f.repository.cancelWorker!({ id: cancelledId! }, await now());
          const availableAt = new Date((await now()) + 60_000);
          const outcomes = await f.repository.retryWorkers!(
            [lost!, ...held].map((model) => ({ model, retry: { error: 'late', retries: 9, availableAt } })),
          );
          expect(outcomes).toEqual(
            new Map([
              [lostId, 'lease-lost'],
              [retriedId, 'retried'],
              [cancelledId, 'cancelled'],
            ]),
          );
          const rows = await pending();
          expect(rows.map((data) => [data.id, data.attempts, data.retries, data.error ?? null])).toEqual([
            [retriedId, 1, 9, 'late'],
            [lostId, 2, 3, null],
          ]);
        });
      }
    });

    describe('failWorker / failWorkers', () => {
      it('failWorker() moves the row to the failed store with its attributes, and only it', async () => {
        const [, kept] = await dispatch(2);
        const [model] = await claim({ limit: 1 });
        const createdAt = model!.getWorkerData()!.createdAt;
        await f.repository.failWorker(model!, failedCopy(model!, 'Error: final\n    at somewhere'));
        expect((await pending()).map((data) => data.id)).toEqual([kept]);
        const failed = await f.failedRows();
        expect(failed).toEqual([
          expect.objectContaining({
            payload: { n: 0 },
            queueName: CONTRACT_QUEUE,
            eventName: 'ContractEvent',
            attempts: 1,
            retries: 3,
            error: 'Error: final\n    at somewhere',
            failedAt: expect.any(Date),
          }),
        ]);
        expect(failed[0]!.createdAt.getTime()).toBe(createdAt.getTime());
      });

      if (leases) {
        it('failWorker() of a row claimed again under another lease throws LeaseLostError and moves nothing', async () => {
          const [id] = await dispatch(1);
          const [lost] = await claim({ leaseMs: SHORT_LEASE_MS });
          await loseLease(lost!);
          await expect(f.repository.failWorker(lost!, failedCopy(lost!))).rejects.toBeInstanceOf(LeaseLostError);
          expect(await f.failedRows()).toEqual([]);
          expect(await pendingRow(id!)).toMatchObject({ attempts: 2 });
        });
      }

      if (leases && cancel) {
        it('failWorker() of a row cancelled while it ran throws EventCancelledError, removes it and moves nothing', async () => {
          const [id] = await dispatch(1);
          const [model] = await claim();
          await f.repository.cancelWorker!({ id: id! }, await now());
          await expect(f.repository.failWorker(model!, failedCopy(model!))).rejects.toBeInstanceOf(EventCancelledError);
          expect(await f.failedRows()).toEqual([]);
          expect(await pending()).toEqual([]);
        });
      }

      if (batchWrites) {
        it('failWorkers() moves every entry with its own copy', async () => {
          const ids = await dispatch(3);
          const claimed = await claim();
          const outcomes = await f.repository.failWorkers!(
            claimed.map((model, n) => ({ model, failed: failedCopy(model, `final ${n}`) })),
          );
          expect(outcomes).toEqual(new Map(ids.map((id) => [id, 'moved'])));
          expect(await pending()).toEqual([]);
          expect((await f.failedRows()).map((data) => [nOf(data), data.error]).sort()).toEqual([
            [0, 'final 0'],
            [1, 'final 1'],
            [2, 'final 2'],
          ]);
        });
      }

      if (batchWrites && leases && cancel) {
        it("failWorkers() reports each entry's outcome: moved, lease-lost (untouched) or cancelled (removed)", async () => {
          const [movedId, cancelledId, lostId] = await dispatch(3);
          const held = await claim({ limit: 2 });
          const [lost] = await claim({ limit: 1, leaseMs: SHORT_LEASE_MS });
          await loseLease(lost!);
          await f.repository.cancelWorker!({ id: cancelledId! }, await now());
          const outcomes = await f.repository.failWorkers!(
            [lost!, ...held].map((model) => ({ model, failed: failedCopy(model) })),
          );
          expect(outcomes).toEqual(
            new Map([
              [lostId, 'lease-lost'],
              [movedId, 'moved'],
              [cancelledId, 'cancelled'],
            ]),
          );
          expect((await pending()).map((data) => [data.id, data.attempts])).toEqual([[lostId, 2]]);
          expect((await f.failedRows()).map(nOf)).toEqual([0]);
        });
      }

      if (atomicFailedMove) {
        it('failWorkers() moves all or nothing: when one copy cannot be stored, no row leaves the pending store', async () => {
          const ids = await dispatch(3);
          const claimed = await claim();
          const broken = claimed.map((model, index) => ({
            model,
            failed: index === 2 ? f.unstorableFailedCopy!(model.getWorkerData()!) : failedCopy(model),
          }));
          // By outcome, not class: a driver's errors may come from another realm than Jest's Error.
          const settled = await f.repository.failWorkers!(broken).then(
            () => 'resolved',
            () => 'rejected',
          );
          expect(settled).toBe('rejected');
          expect(await f.failedRows()).toEqual([]);
          expect((await pending()).map((data) => data.id)).toEqual(ids);
          // Still held by the claim: the same batch moves once its copies can be stored.
          const fixed = claimed.map((model) => ({ model, failed: failedCopy(model) }));
          expect([...(await f.repository.failWorkers!(fixed)).values()]).toEqual(['moved', 'moved', 'moved']);
          expect(await pending()).toEqual([]);
          expect(await f.failedRows()).toHaveLength(3);
        });
      }
    });

    describe('releaseWorkers', () => {
      it('gives claimed rows back at once with their attempt undone, in their place', async () => {
        const ids = await dispatch(3);
        const claimed = await claim({ limit: 2 });
        await f.repository.releaseWorkers(claimed);
        expect((await pending()).map((data) => [data.id, data.attempts])).toEqual(ids.map((id) => [id, 0]));
        const [first] = await claim({ limit: 1, workerId: 'worker-b' });
        expect(first?.getWorkerData()).toMatchObject({ id: ids[0], attempts: 1 });
      });

      if (leases) {
        it('leaves a row claimed again under another lease as it is', async () => {
          const [id] = await dispatch(1);
          const [lost] = await claim({ leaseMs: SHORT_LEASE_MS });
          await loseLease(lost!);
          await f.repository.releaseWorkers([lost!]);
          expect(await pendingRow(id!)).toMatchObject({ attempts: 2 });
          expect(await claim({ workerId: 'worker-c' })).toEqual([]);
        });
      }

      if (leases && cancel) {
        it('removes a released row that was cancelled while it was held', async () => {
          const [cancelledId, keptId] = await dispatch(2);
          const claimed = await claim();
          await f.repository.cancelWorker!({ id: cancelledId! }, await now());
          await f.repository.releaseWorkers(claimed);
          expect((await pending()).map((data) => [data.id, data.attempts])).toEqual([[keptId, 0]]);
          expect((await claim({ workerId: 'worker-b' })).map(idOf)).toEqual([keptId]);
        });
      }
    });

    describe('renewLeases', () => {
      if (leases) {
        it('extends the leases it holds to `leaseMs` from now, and reports nothing', async () => {
          await dispatch(2);
          const claimed = await claim({ leaseMs: SHORT_LEASE_MS });
          expect(renewal(await f.repository.renewLeases(claimed, LONG_LEASE_MS))).toEqual({ cancelled: [], lost: [] });
          await sleep(EXPIRED_AFTER_MS);
          expect(await claim({ workerId: 'worker-b' })).toEqual([]);
        });

        it('reports rows claimed again under another lease as lost, and extends none of them', async () => {
          const [heldId, lostId] = await dispatch(2);
          const held = await claim({ limit: 1 });
          const [lost] = await claim({ limit: 1, leaseMs: SHORT_LEASE_MS });
          await sleep(EXPIRED_AFTER_MS);
          const [holder] = await claim({ limit: 1, workerId: 'worker-b', leaseMs: SHORT_LEASE_MS });
          expect(holder && idOf(holder)).toBe(lostId);
          expect(renewal(await f.repository.renewLeases([lost!, ...held], LONG_LEASE_MS))).toEqual({
            cancelled: [],
            lost: [lostId],
          });
          // The other lease was not extended: it expires as it would have.
          await sleep(EXPIRED_AFTER_MS);
          const [third] = await claim({ workerId: 'worker-c' });
          expect(third?.getWorkerData()).toMatchObject({ id: lostId, attempts: 3 });
          expect(heldId).toBe(idOf(held[0]!));
        });
      } else {
        it('renews nothing and reports nothing (no leases)', async () => {
          await dispatch(1);
          const claimed = await claim();
          expect(renewal(await f.repository.renewLeases(claimed, LONG_LEASE_MS))).toEqual({ cancelled: [], lost: [] });
          expect(await claim({ workerId: 'worker-b' })).toEqual([]);
        });
      }

      if (leases && cancel) {
        it('reports rows cancelled while they run', async () => {
          const [cancelledId] = await dispatch(2);
          const claimed = await claim();
          await f.repository.cancelWorker!({ id: cancelledId! }, await now());
          expect(renewal(await f.repository.renewLeases(claimed, LONG_LEASE_MS))).toEqual({
            cancelled: [cancelledId],
            lost: [],
          });
        });
      }
    });

    if (cancel) {
      describe('cancelWorker', () => {
        it('removes a waiting row and reports it as not running, with its attributes', async () => {
          const [id, kept] = await dispatch(2);
          expect(await f.repository.cancelWorker!({ id: id! }, await now())).toEqual({
            id,
            queueName: CONTRACT_QUEUE,
            eventName: 'ContractEvent',
            wasRunning: false,
            attributes: expect.objectContaining({ id, payload: { n: 0 }, attempts: 0 }),
          });
          expect((await pending()).map((data) => data.id)).toEqual([kept]);
          expect(await f.repository.cancelWorker!({ id: id! }, await now())).toBeUndefined();
        });

        it('finds a waiting row by its queue and unique key, and frees the key', async () => {
          const [id] = await dispatch(1, 0, { uniqueKey: 'key' });
          const target = { queueName: CONTRACT_QUEUE, uniqueKey: 'key' };
          expect(await f.repository.cancelWorker!({ queueName: OTHER_QUEUE, uniqueKey: 'key' }, await now())).toBe(
            undefined,
          );
          expect(await f.repository.cancelWorker!(target, await now())).toMatchObject({ id, wasRunning: false });
          expect(await f.repository.cancelWorker!(target, await now())).toBeUndefined();
          const [again] = await dispatch(1, 1, { uniqueKey: 'key' });
          expect(again).not.toBe(id);
        });

        it('marks a running row cancelled: reported as running, no longer listed, and not cancelled twice', async () => {
          const [id] = await dispatch(1, 0, { uniqueKey: 'running-key' });
          await claim();
          expect(await f.repository.cancelWorker!({ id: id! }, await now())).toMatchObject({
            id,
            wasRunning: true,
            attributes: expect.objectContaining({ attempts: 1 }),
          });
          expect(await pending()).toEqual([]);
          expect(await f.repository.cancelWorker!({ id: id! }, await now())).toBeUndefined();
          // Its key is free for a new event while the cancelled one winds down.
          const [again] = await dispatch(1, 1, { uniqueKey: 'running-key' });
          expect(again).not.toBe(id);
        });

        it('resolves to undefined for an id or a key that no pending row has', async () => {
          await dispatch(1);
          expect(await f.repository.cancelWorker!({ id: '999999' }, await now())).toBeUndefined();
          expect(
            await f.repository.cancelWorker!({ queueName: CONTRACT_QUEUE, uniqueKey: 'nobody' }, await now()),
          ).toBeUndefined();
          expect(await pending()).toHaveLength(1);
        });
      });
    }

    describe('getQueueHealth', () => {
      it('counts the active rows (waiting and running) of every queue with rows, or of the queues named', async () => {
        await dispatch(2);
        await f.events.dispatch(new OtherQueueEvent({ n: 9 }));
        await claim({ limit: 1 });
        expect(await f.repository.getQueueHealth()).toEqual([
          { queueName: CONTRACT_QUEUE, active: 2, failed: 0, total: 2 },
          { queueName: OTHER_QUEUE, active: 1, failed: 0, total: 1 },
        ]);
        expect(await f.repository.getQueueHealth([CONTRACT_QUEUE, 'contract-empty'])).toEqual([
          { queueName: CONTRACT_QUEUE, active: 2, failed: 0, total: 2 },
          { queueName: 'contract-empty', active: 0, failed: 0, total: 0 },
        ]);
      });

      if (statistics) {
        it('counts the failed store in `failed` and `total`, for a queue with failed rows only too', async () => {
          await dispatch(2);
          const [model] = await claim({ limit: 1 });
          await f.repository.failWorker(model!, failedCopy(model!));
          await f.events.dispatch(new OtherQueueEvent({ n: 9 }));
          const [other] = await claim({ queueName: OTHER_QUEUE });
          await f.repository.failWorker(other!, failedCopy(other!));
          expect(await f.repository.getQueueHealth()).toEqual([
            { queueName: CONTRACT_QUEUE, active: 1, failed: 1, total: 2 },
            { queueName: OTHER_QUEUE, active: 0, failed: 1, total: 1 },
          ]);
        });
      }
    });

    if (statistics && leases) {
      describe('getQueueStatistics', () => {
        it('counts pending, due, running, delayed and failed rows per queue in one call', async () => {
          await dispatch(6);
          await claim({ limit: 1 });
          const [failed] = await claim({ limit: 1 });
          await f.repository.failWorker(failed!, failedCopy(failed!));
          const [delayed] = await claim({ limit: 1 });
          await retryLater(delayed!);
          await claim({ limit: 1, leaseMs: SHORT_LEASE_MS });
          await sleep(EXPIRED_AFTER_MS);
          const [contract, empty] = await f.repository.getQueueStatistics!([CONTRACT_QUEUE, 'contract-empty']);
          // Rows 0 (running), 2 (delayed), 3 (lease expired: due again), 4 and 5 (due).
          expect(contract).toEqual({
            queueName: CONTRACT_QUEUE,
            pending: 5,
            due: 3,
            running: 1,
            delayed: 1,
            failed: 1,
            oldestDueAgeMs: expect.any(Number),
            paused: false,
          });
          expect(contract!.oldestDueAgeMs).toBeGreaterThanOrEqual(0);
          expect(empty).toEqual({
            queueName: 'contract-empty',
            pending: 0,
            due: 0,
            running: 0,
            delayed: 0,
            failed: 0,
            oldestDueAgeMs: null,
            paused: false,
          });
          expect((await f.repository.getQueueStatistics!()).map((queue) => queue.queueName)).toEqual([CONTRACT_QUEUE]);
        });
      });
    }

    if (databaseClock) {
      describe('currentTime', () => {
        it("tells the store's time in epoch ms, which never goes back", async () => {
          const before = Date.now();
          const first = await f.repository.currentTime!();
          const second = await f.repository.currentTime!();
          expect(Number.isInteger(first)).toBe(true);
          // The store runs on this machine: its clock agrees with the process's.
          expect(Math.abs(first - before)).toBeLessThan(5_000);
          expect(second).toBeGreaterThanOrEqual(first);
        });
      });
    }
  });
}
