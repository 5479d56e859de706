/**
 * Strict means measured (issue #17, point 6): 4 real worker processes share one queue on PostgreSQL, on
 * MariaDB and on one SQLite file, and record every execute() start and end in mp_runs. From those
 * records: the runs of a globally limited queue, and of one concurrency key, open at once never exceed
 * their limit; the starts in any window of a rate limit never exceed it, and the rate achieved with a
 * backlog is close to it; a worker SIGKILLed mid-run holds its slots until its leases expire, then
 * they come back; one key's backlog does not hold back the keys dispatched after it. Each test prints
 * its figures (maxima, rates, times) on one line.
 *
 * Two clocks are checked. The database's (started_at, ended_at) records an interval inside each
 * execute() call: the INSERT lands after it began, the end UPDATE before it returned, so an overlap
 * seen there is a real one. The processes' Date.now() at execute() entry and return (started_local,
 * ended_local) is one clock too, since every process of these tests runs on this machine: it is
 * where a start happens, without the INSERT's round trip, so the rate windows are counted on it.
 */
import { jest } from '@jest/globals';
import { testDatabases } from './support/databases.js';
import { waitFor } from './support/test-app.js';
import {
  countBy,
  databaseIntervals,
  limitViolations,
  localIntervals,
  maxOpen,
  maxStartsInWindow,
  type RecordedRunSpec,
  reportFigures,
  type RunRecord,
  type WorkerProcess,
  workerProcessSuite,
} from './support/worker-processes.js';

jest.setTimeout(240_000);

const PROCESSES = 4;

/** How the violations are shown when a limit was exceeded: the start and the runs it found open. */
function describeViolations(violations: ReturnType<typeof limitViolations>): string[] {
  const run = (record: RunRecord): string =>
    `#${record.eventN}(${record.eventName}, key ${record.key}, ${record.worker}, db ${record.startedAt}–${record.endedAt}, ` +
    `local ${record.startedLocal}–${record.endedLocal})`;
  if (violations.length === 0) return [];
  return [
    `${violations.length} starts over their limit, the first 5:`,
    ...violations
      .slice(0, 5)
      .map(
        (violation) =>
          `group ${violation.group} limit ${violation.limit}: ${run(violation.start)} started with ${violation.open} open: ` +
          violation.others.map(run).join(', '),
      ),
  ];
}

describe.each(testDatabases())('flow limits hold over 4 worker processes on $name', (database) => {
  const suite = workerProcessSuite(database);
  const { workers } = suite;

  function startWorkers(settings: Record<string, string>): Promise<WorkerProcess[]> {
    return Promise.all(Array.from({ length: PROCESSES }, (_, index) => suite.start(`w${index + 1}`, settings)));
  }

  /** Waits until the queue is empty; every event completed once at least, none failed. */
  async function untilDrained(events: number, timeoutMs: number): Promise<RunRecord[]> {
    await waitFor(async () => (await suite.queue.count('nestjs_workers')) === 0, timeoutMs).catch((error: Error) => {
      throw new Error(
        `${error.message}\n${workers.map((worker) => `--- ${worker.label}\n${worker.output.slice(-3000)}`).join('\n')}`,
      );
    });
    expect(await suite.queue.count('nestjs_failed_workers')).toBe(0);
    const runs = await suite.queue.runs();
    expect(new Set(runs.filter((run) => run.endedAt !== null).map((run) => run.eventN)).size).toBe(events);
    return runs;
  }

  const never = (): number => Number.POSITIVE_INFINITY;
  const seconds = (ms: number): string => (ms / 1000).toFixed(2);
  const perProcess = (runs: RunRecord[]): string =>
    [...countBy(runs, (run) => Number(run.worker.slice(1)))]
      .sort(([a], [b]) => a - b)
      .map(([worker, count]) => `w${worker}:${count}`)
      .join(',');

  it('globalConcurrency 3, each process at concurrency 4: never more than 3 running at once', async () => {
    const events = 1000;
    const limit = 3;
    await suite.queue.dispatch(events);
    const started = Date.now();
    await startWorkers({ MP_GLOBAL_CONCURRENCY: String(limit), MP_CONCURRENCY: '4', MP_EVENT_MS: '20' });
    const runs = await untilDrained(events, 120_000);
    const elapsed = Date.now() - started;

    const whole = (): string => 'queue';
    const violations = [
      ...limitViolations(databaseIntervals(runs), whole, () => limit, never),
      ...limitViolations(localIntervals(runs), whole, () => limit, never),
    ];
    expect(describeViolations(violations)).toEqual([]);
    const openDb = maxOpen(databaseIntervals(runs), never);
    const openLocal = maxOpen(localIntervals(runs), never);
    // The limit is what held the processes back (16 local slots): it was reached, by several processes.
    expect(openLocal).toBe(limit);
    expect(countBy(runs, (run) => Number(run.worker.slice(1))).size).toBeGreaterThan(1);
    reportFigures({
      database: database.name,
      test: 'globalConcurrency',
      processes: PROCESSES,
      localConcurrency: 4,
      limit,
      events,
      runs: runs.length,
      maxOpenDbClock: openDb,
      maxOpenProcessClock: openLocal,
      seconds: seconds(elapsed),
      eventsPerSecond: Math.round((events / elapsed) * 1000),
      perProcess: perProcess(runs),
    });
  });

  it('keyConcurrency 1 over 20 keys (and 2 for one event class): never more per key at once', async () => {
    const events = 1000;
    const keys = 20;
    // Odd events are RecordedRunEventB, whose @QueueEvent({ keyConcurrency: 2 }) wins over the queue's 1.
    const specs: RecordedRunSpec[] = Array.from({ length: events }, (_, n) => ({
      n,
      key: `key-${n % keys}`,
      b: n % 2 === 1,
    }));
    await suite.queue.dispatchEvents(specs);
    const started = Date.now();
    await startWorkers({ MP_KEY_CONCURRENCY: '1', MP_B_KEY_CONCURRENCY: '2', MP_CONCURRENCY: '4', MP_EVENT_MS: '20' });
    const runs = await untilDrained(events, 120_000);
    const elapsed = Date.now() - started;

    // A start of a class-A event finds no run of its key open; one of class B at most 1 (its own limit 2).
    const limitOf = (run: RunRecord): number => (run.eventName === 'RecordedRunEventB' ? 2 : 1);
    const byKey = (run: RunRecord): string | undefined => run.key ?? undefined;
    const violations = [
      ...limitViolations(databaseIntervals(runs), byKey, limitOf, never),
      ...limitViolations(localIntervals(runs), byKey, limitOf, never),
    ];
    expect(describeViolations(violations)).toEqual([]);
    const onlyA = runs.filter((run) => run.eventName === 'RecordedRunEvent');
    const openPerKey = maxOpen(localIntervals(runs), never, byKey);
    const openPerKeyA = maxOpen(localIntervals(onlyA), never, byKey);
    const openOverall = maxOpen(localIntervals(runs), never);
    expect(openPerKey).toBeLessThanOrEqual(2);
    expect(openPerKeyA).toBe(1);
    // Many keys ran side by side: the limit is per key, not per queue.
    expect(openOverall).toBeGreaterThan(4);
    reportFigures({
      database: database.name,
      test: 'keyConcurrency',
      processes: PROCESSES,
      keys,
      events,
      limitA: 1,
      limitB: 2,
      maxOpenPerKey: openPerKey,
      maxOpenPerKeyClassA: openPerKeyA,
      maxOpenPerKeyDbClock: maxOpen(databaseIntervals(runs), never, byKey),
      maxOpenAllKeys: openOverall,
      seconds: seconds(elapsed),
      eventsPerSecond: Math.round((events / elapsed) * 1000),
    });
  });

  it('rateLimit 20 per second with a backlog: never more than 20 starts in any 1 s window, at ≥ 90 % of the rate', async () => {
    const events = 300;
    const limit = 20;
    // The processes first, then the backlog (dispatched far faster than 20/s): the rate is measured
    // with all 4 processes claiming, not while some of them still boot.
    await startWorkers({ MP_RATE_LIMIT: `${limit}/1`, MP_CONCURRENCY: '4', MP_EVENT_MS: '5' });
    await suite.queue.dispatch(events);
    const runs = await untilDrained(events, 120_000);
    // Granted starts given back because the worker could not start them within the start grace.
    const givenBack = workers
      .flatMap((worker) => [...worker.output.matchAll(/(\d+) rate-limited event\(s\) given back unstarted/g)])
      .reduce((sum, match) => sum + Number(match[1]), 0);

    const localStarts = runs.map((run) => run.startedLocal);
    const windowLocal = maxStartsInWindow(localStarts, 1000);
    const windowDb = maxStartsInWindow(
      runs.map((run) => run.startedAt),
      1000,
    );
    expect(runs).toHaveLength(events);
    expect(windowLocal.count).toBeLessThanOrEqual(limit);
    // The rate achieved while the backlog lasted: after the first window's `limit` starts, one more
    // budget of `limit` per interval (a limiter that grants exactly its rate scores 20/s).
    const first = Math.min(...localStarts);
    const last = Math.max(...localStarts);
    const achieved = ((events - limit) / (last - first)) * 1000;
    // How long `limit` starts took on average (start i to start i + limit): the interval, plus the start
    // grace during which a granted start still counts, plus what the re-claim at nextStartAt loses.
    const sorted = [...localStarts].sort((a, b) => a - b);
    const cycles = sorted.slice(limit).map((start, index) => start - sorted[index]!);
    const cycleMs = cycles.reduce((sum, cycle) => sum + cycle, 0) / cycles.length;
    reportFigures({
      database: database.name,
      test: 'rateLimit',
      processes: PROCESSES,
      configured: `${limit}/s`,
      events,
      maxStartsIn1sProcessClock: windowLocal.count,
      maxStartsIn1sDbClock: windowDb.count,
      achievedPerSecond: achieved.toFixed(2),
      achievedShare: `${((achieved / limit) * 100).toFixed(1)}%`,
      meanMsPerLimitStarts: cycleMs.toFixed(0),
      minMsPerLimitStarts: Math.min(...cycles),
      givenBackUnstarted: givenBack,
      seconds: seconds(last - first),
      perProcess: perProcess(runs),
    });
    expect(achieved).toBeGreaterThanOrEqual(0.9 * limit);
  });

  it("SIGKILL mid-run: the limits hold, the dead worker's slots stay taken until its leases expire, then come back", async () => {
    const events = 300;
    const keys = 20;
    const limit = 3;
    const leaseSeconds = 2;
    const heartbeatMs = (leaseSeconds * 1000) / 3;
    await suite.queue.dispatchEvents(Array.from({ length: events }, (_, n) => ({ n, key: `key-${n % keys}` })));
    const started = await startWorkers({
      MP_GLOBAL_CONCURRENCY: String(limit),
      MP_KEY_CONCURRENCY: '1',
      MP_CONCURRENCY: '4',
      MP_EVENT_MS: '100',
      MP_LEASE_SECONDS: String(leaseSeconds),
    });
    // Mid-run: some events done, and the victim holds slots (a process running an event now: with the
    // queue's 3 slots shared by 4 processes, which ones hold them is up to the claims).
    let victim: WorkerProcess | undefined;
    await waitFor(async () => {
      const runs = await suite.queue.runs();
      // The latest start: the run most likely still to be running when the kill lands.
      const running = runs
        .filter((run) => run.endedAt === null)
        .sort((a, b) => b.startedAt - a.startedAt)
        .at(0);
      victim = started.find((worker) => worker.label === running?.worker);
      return runs.filter((run) => run.endedAt !== null).length >= 30 && victim !== undefined;
    }, 60_000);
    victim!.kill('SIGKILL');
    await victim!.exited;
    const killedAt = await suite.queue.now();

    const runs = await untilDrained(events, 120_000);
    const dead = runs.filter((run) => run.worker === victim!.label && run.endedAt === null);
    expect(dead.length).toBeGreaterThanOrEqual(1);
    // A dead run's slot is live until its lease expires: at least the lease after its last heartbeat,
    // which came at most a heartbeat interval before the kill (100 ms of margin for the kill's own query).
    const slotHeldUntil = killedAt + leaseSeconds * 1000 - heartbeatMs - 100;
    const heldUntil = (run: RunRecord): number => (run.worker === victim!.label ? slotHeldUntil : Infinity);
    const violations = [
      ...limitViolations(
        databaseIntervals(runs),
        () => 'queue',
        () => limit,
        heldUntil,
      ),
      ...limitViolations(
        databaseIntervals(runs),
        (run) => run.key ?? undefined,
        () => 1,
        heldUntil,
      ),
    ];
    expect(describeViolations(violations)).toEqual([]);
    // The slots come back: once the leases have expired the queue runs `limit` at once again.
    const afterLeases = { from: killedAt + leaseSeconds * 1000 + 500, to: Number.POSITIVE_INFINITY };
    const openAfterLeases = maxOpen(databaseIntervals(runs), heldUntil, () => '', afterLeases);
    expect(openAfterLeases).toBe(limit);
    const interrupted = new Set(dead.map((run) => run.eventN));
    const reruns = runs.filter(
      (run) => interrupted.has(run.eventN) && run.worker !== victim!.label && run.startedAt >= killedAt,
    );
    expect(new Set(reruns.map((run) => run.eventN)).size).toBe(interrupted.size);
    const live = runs.filter((run) => run.worker !== victim!.label || run.endedAt !== null);
    reportFigures({
      database: database.name,
      test: 'sigkill',
      processes: PROCESSES,
      events,
      globalLimit: limit,
      keyLimit: 1,
      leaseSeconds,
      deadSlots: dead.length,
      maxOpenOverall: maxOpen(databaseIntervals(runs), heldUntil),
      maxOpenPerKey: maxOpen(databaseIntervals(runs), heldUntil, (run) => run.key ?? undefined),
      // While the dead slots were held, the live processes ran at most limit − dead at once.
      maxOpenLiveWhileHeld: maxOpen(databaseIntervals(live), never, () => '', { from: killedAt, to: slotHeldUntil }),
      maxOpenAfterLeases: openAfterLeases,
      rerunAfterSeconds: seconds(Math.min(...reruns.map((run) => run.startedAt)) - killedAt),
      perProcess: perProcess(runs),
    });
  });

  it.each([4, 100])(
    'fairness (keyConcurrency %i): the keys dispatched after a big backlog start long before it drains',
    async (keyConcurrency) => {
      const big = 1600;
      const smallKeys = 8;
      const perSmallKey = 5;
      const specs: RecordedRunSpec[] = [
        ...Array.from({ length: big }, (_, n) => ({ n, key: 'big' })),
        ...Array.from({ length: smallKeys * perSmallKey }, (_, index) => ({
          n: big + index,
          key: `small-${index % smallKeys}`,
        })),
      ];
      await suite.queue.dispatchEvents(specs);
      await startWorkers({ MP_KEY_CONCURRENCY: String(keyConcurrency), MP_CONCURRENCY: '4', MP_EVENT_MS: '20' });
      const runs = await untilDrained(specs.length, 120_000);

      const byKey = (run: RunRecord): string | undefined => run.key ?? undefined;
      expect(describeViolations(limitViolations(localIntervals(runs), byKey, () => keyConcurrency, never))).toEqual([]);
      const first = Math.min(...runs.map((run) => run.startedLocal));
      const bigRuns = runs.filter((run) => run.key === 'big');
      const smallRuns = runs.filter((run) => run.key !== 'big');
      const bigDrainedMs = Math.max(...bigRuns.map((run) => run.startedLocal)) - first;
      const smallFirstMs = Math.min(...smallRuns.map((run) => run.startedLocal)) - first;
      const smallAllMs = Math.max(...smallRuns.map((run) => run.startedLocal)) - first;
      const bigBeforeSmallDone = bigRuns.filter((run) => run.startedLocal - first <= smallAllMs).length;
      reportFigures({
        database: database.name,
        test: 'fairness',
        processes: PROCESSES,
        keyConcurrency,
        bigBacklog: big,
        smallEvents: smallRuns.length,
        smallKeys,
        firstSmallStartSeconds: seconds(smallFirstMs),
        allSmallStartedSeconds: seconds(smallAllMs),
        bigDrainedSeconds: seconds(bigDrainedMs),
        bigStartedBeforeSmallDone: bigBeforeSmallDone,
      });
      // Every small key's events all started in the first fifth of the big key's drain: the small keys
      // did not wait behind its backlog (in claim order, they come after all 1,600 of its events).
      expect(smallAllMs).toBeLessThan(bigDrainedMs / 5);
    },
  );
});
