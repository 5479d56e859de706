/**
 * Real worker processes sharing one server database, each execution recorded in mp_runs: every
 * event completed exactly once, no overlapping runs, recovery after SIGKILL (leases expire, other
 * workers finish the events) and a clean SIGTERM drain. Each test prints its figures.
 */
import { jest } from '@jest/globals';
import { serverDatabases } from './support/databases.js';
import {
  countBy,
  overlappingEvents,
  type RunRecord,
  type WorkerProcess,
  workerProcessSuite,
} from './support/worker-processes.js';
import { waitFor } from './support/test-app.js';

jest.setTimeout(180_000);

function report(figures: Record<string, string | number>): void {
  process.stdout.write(
    `${Object.entries(figures)
      .map(([key, value]) => `${key}=${value}`)
      .join(' ')}\n`,
  );
}

function duplicates(runs: RunRecord[]): number[] {
  return [...countBy(runs, (run) => run.eventN)].filter(([, count]) => count > 1).map(([eventN]) => eventN);
}

describe.each(serverDatabases())('worker processes sharing $name', (database) => {
  const suite = workerProcessSuite(database);
  const { workers } = suite;

  function startWorkers(count: number, settings: Record<string, string>): Promise<WorkerProcess[]> {
    return Promise.all(Array.from({ length: count }, (_, index) => suite.start(`w${index + 1}`, settings)));
  }

  async function untilDrained(events: number, timeoutMs: number): Promise<void> {
    await waitFor(async () => (await suite.queue.count('nestjs_workers')) === 0, timeoutMs).catch((error: Error) => {
      throw new Error(
        `${error.message}\n${workers.map((worker) => `--- ${worker.label}\n${worker.output.slice(-3000)}`).join('\n')}`,
      );
    });
    expect(await suite.queue.count('nestjs_failed_workers')).toBe(0);
    const completed = new Set(
      (await suite.queue.runs()).filter((run) => run.endedAt !== null).map((run) => run.eventN),
    );
    expect(completed.size).toBe(events);
  }

  it('4 processes run 2,000 events: each succeeds exactly once, no runs overlap, nothing is left', async () => {
    const events = 2000;
    await suite.queue.dispatch(events);
    const started = Date.now();
    await startWorkers(4, { MP_EVENT_MS: '2', MP_CONCURRENCY: '8' });
    await untilDrained(events, 120_000);
    const seconds = (Date.now() - started) / 1000;

    const runs = await suite.queue.runs();
    expect(runs).toHaveLength(events);
    expect(duplicates(runs)).toEqual([]);
    expect(overlappingEvents(runs, () => Date.now())).toEqual([]);
    const perWorker = countBy(runs, (run) => Number(run.worker.slice(1)));
    expect(perWorker.size).toBe(4);
    report({
      database: database.name,
      test: 'exactly-once',
      events,
      processes: 4,
      lost: events - new Set(runs.map((run) => run.eventN)).size,
      duplicateRuns: runs.length - events,
      seconds: seconds.toFixed(1),
      perProcess: [...perWorker.entries()]
        .sort()
        .map(([worker, count]) => `w${worker}:${count}`)
        .join(','),
    });
  });

  it("SIGKILL: the killed worker's events finish elsewhere after its leases expire; only interrupted runs repeat", async () => {
    const events = 300;
    await suite.queue.dispatch(events);
    // Events long enough (400 ms) that the runs seen in flight are still running when the kill lands,
    // however slowly the check's query answers on a loaded machine.
    const [victim] = await startWorkers(4, { MP_EVENT_MS: '400', MP_CONCURRENCY: '4', MP_LEASE_SECONDS: '2' });
    await waitFor(
      async () =>
        (await suite.queue.runs()).filter((run) => run.worker === victim!.label && run.endedAt === null).length >= 3,
      30_000,
    );
    victim!.kill('SIGKILL');
    const killedAt = Date.now();
    await victim!.exited;

    await untilDrained(events, 60_000);
    const runs = await suite.queue.runs();
    const interrupted = runs.filter((run) => run.worker === victim!.label && run.endedAt === null);
    const interruptedEvents = new Set(interrupted.map((run) => run.eventN));
    expect(interrupted.length).toBeGreaterThanOrEqual(3);
    // Only the runs the kill cut short were repeated, each once, and only after the kill.
    expect(duplicates(runs).sort((a, b) => a - b)).toEqual([...interruptedEvents].sort((a, b) => a - b));
    for (const eventN of interruptedEvents) {
      const finished = runs.filter((run) => run.eventN === eventN && run.endedAt !== null);
      expect(finished).toHaveLength(1);
      expect(finished[0]!.startedAt).toBeGreaterThanOrEqual(killedAt);
    }
    expect(overlappingEvents(runs, () => killedAt)).toEqual([]);
    const reruns = runs.filter((run) => interruptedEvents.has(run.eventN) && run.endedAt !== null);
    const recoveredAt = Math.max(
      ...runs.filter((run) => interruptedEvents.has(run.eventN) && run.endedAt !== null).map((run) => run.endedAt!),
    );
    report({
      database: database.name,
      test: 'sigkill',
      events,
      processes: 4,
      lost: 0,
      interruptedRuns: interrupted.length,
      duplicateRuns: runs.length - events,
      leaseSeconds: 2,
      // First re-run of an interrupted event (≈ the lease) and the last one finished (queue backlog included).
      rerunAfterSeconds: ((Math.min(...reruns.map((run) => run.startedAt)) - killedAt) / 1000).toFixed(2),
      recoverySeconds: ((recoveredAt - killedAt) / 1000).toFixed(2),
    });
  });

  it('SIGTERM: the worker stops claiming, finishes what it runs, exits 0, and no event runs twice', async () => {
    const events = 120;
    await suite.queue.dispatch(events);
    const [victim] = await startWorkers(2, { MP_EVENT_MS: '300', MP_CONCURRENCY: '4', MP_GRACE_SECONDS: '10' });
    await waitFor(
      async () =>
        (await suite.queue.runs()).filter((run) => run.worker === victim!.label && run.endedAt === null).length >= 2,
      30_000,
    );
    const runningAtTerm = (await suite.queue.runs()).filter(
      (run) => run.worker === victim!.label && run.endedAt === null,
    ).length;
    victim!.kill('SIGTERM');
    const termAt = Date.now();
    const exit = await victim!.exited;
    const exitMs = Date.now() - termAt;
    expect(exit).toEqual({ code: 0, signal: null });

    const victimRuns = (await suite.queue.runs()).filter((run) => run.worker === victim!.label);
    // Everything it had started, it finished; nothing started later than a poll already under way.
    expect(victimRuns.every((run) => run.endedAt !== null)).toBe(true);
    expect(victimRuns.filter((run) => run.startedAt > termAt + 50)).toEqual([]);

    await untilDrained(events, 60_000);
    const runs = await suite.queue.runs();
    expect(runs).toHaveLength(events);
    expect(duplicates(runs)).toEqual([]);
    report({
      database: database.name,
      test: 'sigterm',
      events,
      processes: 2,
      runningAtTerm,
      exitCode: exit.code ?? 'none',
      drainMs: exitMs,
      duplicateRuns: 0,
    });
  });
});
