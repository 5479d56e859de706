/**
 * The @nestjs/terminus indicator (nestjs-workers/terminus) on every database: each queue's
 * statistics, `down` past maxFailed or maxOldestDueAgeSeconds or when the statistics cannot be read.
 */
import { HealthCheckService } from '@nestjs/terminus';
import { BaseEvent, InvalidWorkerOptionsError, QueueEvent, WorkerFlowService } from '../lib/index.js';
import { WorkerHealthIndicator, WorkerHealthModule } from '../lib/health/index.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, runOncePass, type TestApp } from './support/test-app.js';

@QueueEvent('health-queue', { retries: 1 })
class HealthProbeEvent extends BaseEvent<{ fail: boolean }> {
  async execute(): Promise<void> {
    if (this.getPayload().fail) throw new Error('probe failed');
  }
}

describe.each(testDatabases())('WorkerHealthIndicator ($name)', (database) => {
  let t: TestApp;
  let indicator: WorkerHealthIndicator;

  beforeEach(async () => {
    t = await createTestApp(
      { events: [HealthProbeEvent] },
      { imports: [WorkerHealthModule.register({ maxFailed: 0 })] },
      database,
    );
    indicator = t.app.get(WorkerHealthIndicator);
  });

  afterEach(async () => {
    await t.close();
  });

  it("is up with every queue's statistics and the seed summary while under the thresholds", async () => {
    await t.events.dispatch(new HealthProbeEvent({ fail: false }));
    const result = await indicator.isHealthy('workers');
    expect(result).toEqual({
      workers: {
        status: 'up',
        active: 1,
        failed: 0,
        total: 1,
        queues: [
          {
            queueName: 'health-queue',
            pending: 1,
            due: 1,
            running: 0,
            delayed: 0,
            failed: 0,
            oldestDueAgeMs: expect.any(Number),
            paused: false,
          },
        ],
      },
    });
  });

  it('is down, naming the queue and the limit, past maxFailed (module default) or maxOldestDueAgeSeconds (per check)', async () => {
    await t.events.dispatch(new HealthProbeEvent({ fail: true }));
    await t.workers.runWorker(runOncePass('health-queue'));
    const failed = await indicator.isHealthy('workers');
    expect(failed.workers).toMatchObject({
      status: 'down',
      failed: 1,
      problems: ['health-queue: 1 failed events (max 0)'],
    });
    expect((await indicator.isHealthy('workers', { maxFailed: 5 })).workers.status).toBe('up');

    await t.events.dispatch(new HealthProbeEvent({ fail: false }));
    await t.dataSource.query(`UPDATE nestjs_workers SET available_at = ${Date.now() - 90_000}`);
    const late = await indicator.isHealthy('workers', { maxFailed: 5, maxOldestDueAgeSeconds: 60 });
    expect(late.workers).toMatchObject({
      status: 'down',
      problems: [expect.stringMatching(/^health-queue: oldest due event waiting 9\d s \(max 60 s\)$/)],
    });
    // Paused on purpose, the queue's wait is no fault; resumed, it is again.
    await t.app.get(WorkerFlowService).pauseQueue('health-queue');
    expect((await indicator.isHealthy('workers', { maxFailed: 5, maxOldestDueAgeSeconds: 60 })).workers.status).toBe(
      'up',
    );
    await t.app.get(WorkerFlowService).resumeQueue('health-queue');
    expect((await indicator.isHealthy('workers', { maxFailed: 5, maxOldestDueAgeSeconds: 60 })).workers.status).toBe(
      'down',
    );
  });

  it('makes a terminus health check answer with error details when down', async () => {
    await t.events.dispatch(new HealthProbeEvent({ fail: true }));
    await t.workers.runWorker(runOncePass('health-queue'));
    const check = t.app.get(HealthCheckService).check([() => indicator.isHealthy('workers')]);
    await expect(check).rejects.toMatchObject({
      response: { status: 'error', error: { workers: { status: 'down' } } },
    });
  });

  it('is down with the reason when the statistics cannot be read, and refuses bad thresholds', async () => {
    await expect(indicator.isHealthy('workers', { maxFailed: -1 })).rejects.toBeInstanceOf(InvalidWorkerOptionsError);
    await expect(indicator.isHealthy('workers', { maxAge: 5 } as never)).rejects.toThrow('"maxAge": is not an option');
    await t.dataSource.query('DROP TABLE nestjs_failed_workers');
    const result = await indicator.isHealthy('workers');
    expect(result.workers).toMatchObject({
      status: 'down',
      message: expect.stringMatching(/^Queue statistics unavailable: /),
    });
    await t.dataSource.synchronize();
  });
});
