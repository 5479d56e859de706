/**
 * Job state end to end, on every database, through the public API only: what WorkerJobsService says
 * of an event as the worker takes it through its life (delayed, waiting, running with its progress,
 * retried, snoozed, completed with its result, failed, cancelled), the live worker processes and the
 * per-minute throughput.
 */
import {
  BaseEvent,
  FailedWorkerService,
  QueueEvent,
  UnrecoverableError,
  type JobRecord,
  WorkerJobsService,
  type WorkerModuleOptions,
} from '../lib/index.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, runOncePass, type TestApp, waitFor } from './support/test-app.js';

/** Reports progress, then waits until the test lets it finish with a result. */
@QueueEvent('jobs')
class ExportEvent extends BaseEvent<{ account: string }, { file: string }> {
  static release: () => void = () => undefined;
  async execute(): Promise<{ file: string }> {
    this.reportProgress({ done: 1, of: 3 });
    this.reportProgress({ done: 2, of: 3 });
    await new Promise<void>((resolve) => (ExportEvent.release = resolve));
    return { file: `${this.getPayload().account}.csv` };
  }
}

/** Fails its first attempt after reporting progress, then succeeds. */
@QueueEvent('jobs')
class FlakyExportEvent extends BaseEvent<{ account: string }, string> {
  static runs = 0;
  async execute(): Promise<string> {
    FlakyExportEvent.runs++;
    if (FlakyExportEvent.runs === 1) {
      this.reportProgress(90);
      await new Promise((resolve) => setTimeout(resolve, 400)); // a heartbeat writes the 90
      throw new Error('partner timed out');
    }
    return 'second time lucky';
  }
}

@QueueEvent('jobs')
class ClosedAccountEvent extends BaseEvent<{ account: string }> {
  async execute(): Promise<void> {
    throw new UnrecoverableError('the account is closed');
  }
}

@QueueEvent('jobs')
class LaterEvent extends BaseEvent<{ account: string }, string> {
  static runs = 0;
  async execute() {
    LaterEvent.runs++;
    return LaterEvent.runs === 1 ? this.snooze(3600) : 'later';
  }
}

const OPTIONS: WorkerModuleOptions = {
  events: [ExportEvent, FlakyExportEvent, ClosedAccountEvent, LaterEvent],
  queues: { jobs: { retries: 3, keepCompleted: true } },
  leaseSeconds: 1.5,
  heartbeatSeconds: 0.1,
};

describe.each(testDatabases())('job state through WorkerJobsService ($name)', (database) => {
  let t: TestApp;
  let jobs: WorkerJobsService;

  beforeEach(async () => {
    FlakyExportEvent.runs = 0;
    LaterEvent.runs = 0;
    t = await createTestApp(OPTIONS, {}, database);
    jobs = t.app.get(WorkerJobsService);
  });

  afterEach(async () => {
    ExportEvent.release();
    await t.close();
  });

  const job = async (id: string | undefined): Promise<JobRecord> => {
    const found = await jobs.getJob(id!);
    if (!found) throw new Error(`job ${id} not found`);
    return found;
  };

  it('follows an event from delayed to running with its progress to completed with its result', async () => {
    const id = await t.events.dispatch(new ExportEvent({ account: 'acme' }), { delaySeconds: 0.3 });
    expect(await job(id)).toMatchObject({ id, state: 'delayed', attempts: 0, progress: null, startedAt: null });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await job(id)).state).toBe('waiting');

    const run = t.workers.runWorker(runOncePass('jobs'));
    await waitFor(async () => (await job(id)).progress !== null);
    const running = await job(id);
    expect(running).toMatchObject({
      state: 'running',
      attempts: 1,
      progress: { done: 2, of: 3 },
      workerId: t.workers.workerId,
      result: null,
      finishedAt: null,
    });
    expect(running.startedAt).toBeInstanceOf(Date);

    ExportEvent.release();
    expect(await run).toMatchObject({ processed: 1 });
    const completed = await job(id);
    expect(completed).toMatchObject({
      id,
      queueName: 'jobs',
      eventName: 'ExportEvent',
      state: 'completed',
      payload: { account: 'acme' },
      attempts: 1,
      progress: { done: 2, of: 3 },
      result: { file: 'acme.csv' },
      error: null,
      workerId: t.workers.workerId,
    });
    expect(completed.finishedAt!.getTime()).toBeGreaterThanOrEqual(completed.startedAt!.getTime());
    expect(completed.durationMs).toBeGreaterThanOrEqual(0);

    const page = await jobs.findJobs({ queueName: 'jobs', state: 'completed', payload: { account: 'acme' } });
    expect(page).toMatchObject({ total: 1, items: [{ id, result: { file: 'acme.csv' } }] });
  });

  it('shows a retried event waiting with its error and last progress, then completed without the stale progress', async () => {
    const id = await t.events.dispatch(new FlakyExportEvent({ account: 'beta' }));
    expect(await t.workers.runWorker(runOncePass('jobs', { runAfterSeconds: 0 }))).toMatchObject({ retried: 1 });
    const retrying = await job(id);
    // The failed attempt's progress is still there until the next attempt is claimed.
    expect(retrying).toMatchObject({ state: 'waiting', attempts: 1, progress: 90 });
    expect(retrying.error).toContain('partner timed out');

    await t.workers.runWorker(runOncePass('jobs', { runAfterSeconds: 0 }));
    // The second attempt reported nothing: the claim cleared the first one's 90.
    expect(await job(id)).toMatchObject({
      state: 'completed',
      attempts: 2,
      progress: null,
      result: 'second time lucky',
    });
  });

  it('keeps the id of an event that failed for good (also when retried from the failed store), of one snoozed, and of one cancelled', async () => {
    const closed = await t.events.dispatch(new ClosedAccountEvent({ account: 'gone' }));
    const later = await t.events.dispatch(new LaterEvent({ account: 'sleepy' }));
    const cancelled = await t.events.dispatch(new LaterEvent({ account: 'cancel-me' }), { delaySeconds: 60 });
    await t.workers.runWorker(runOncePass('jobs'));

    const failed = await job(closed);
    expect(failed).toMatchObject({ id: closed, state: 'failed', attempts: 1, payload: { account: 'gone' } });
    expect(failed.error).toContain('the account is closed');
    expect(failed.finishedAt).toBeInstanceOf(Date);

    const snoozed = await job(later);
    expect(snoozed).toMatchObject({ state: 'delayed', attempts: 0 });
    expect(snoozed.dueAt.getTime()).toBeGreaterThan(Date.now() + 3000 * 1000);

    expect(await t.workers.cancel(cancelled!)).toMatchObject({ wasRunning: false });
    expect(await jobs.getJob(cancelled!)).toMatchObject({ state: 'cancelled' });

    const states = (await jobs.findJobs({ queueName: 'jobs' })).items.map(({ id, state }) => [id, state]);
    expect(states).toEqual([
      [cancelled, 'cancelled'],
      [later, 'delayed'],
      [closed, 'failed'],
    ]);

    // Retried from the failed store, the job is back in line under its own id.
    expect(await t.app.get(FailedWorkerService).retryAll({ queueName: 'jobs' })).toBe(1);
    expect(await job(closed)).toMatchObject({ id: closed, state: 'waiting', attempts: 0, error: null });
    const again = await t.events.dispatch(new LaterEvent({ account: 'new' }));
    expect(Number(again)).toBeGreaterThan(Number(cancelled));
  });

  it('counts outcomes per minute and lists the process that polls', async () => {
    await t.events.dispatch(new ClosedAccountEvent({ account: 'x' }));
    await t.events.dispatch(new FlakyExportEvent({ account: 'y' }));
    await t.workers.runWorker(runOncePass('jobs', { runAfterSeconds: 0 }));
    const points = await jobs.getThroughput({ queueName: 'jobs' });
    const byEvent = Object.fromEntries(points.map((point) => [point.eventName, point]));
    expect(byEvent.ClosedAccountEvent).toMatchObject({ failed: 1, completed: 0 });
    expect(byEvent.FlakyExportEvent).toMatchObject({ retried: 1, completed: 0 });

    const listed = await jobs.listWorkers();
    expect(listed).toEqual([expect.objectContaining({ id: t.workers.workerId, pid: process.pid, queues: ['jobs'] })]);
  });
});
