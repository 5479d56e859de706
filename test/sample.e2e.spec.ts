/**
 * The sample app end to end on every database, over HTTP (supertest): dispatch and POST /workers/run,
 * health and metrics endpoints, the failed store over REST, operator guards, priority, unique keys and
 * cancel, the daily digest cron and the recurring queue report.
 */
import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import {
  EventService,
  type QueueStatistics,
  RecurringEventScheduler,
  WorkerRateLimiter,
  WorkerService,
} from '../lib/index.js';
import { AccountSyncEvent, AccountSyncLog, type SyncRun } from '../sample/account-sync.event.js';
import { PartnerApiService } from '../sample/partner-api.service.js';
import { AppModule, type SampleAppOptions } from '../sample/app.module.js';
import { DIGEST_RECIPIENT } from '../sample/daily-digest.event.js';
import { DIGEST_CRON_JOB, DigestScheduler } from '../sample/digest.scheduler.js';
import { MailService } from '../sample/mail.service.js';
import { QUEUE_REPORT_SCHEDULE } from '../sample/queue-report.event.js';
import type { DataSource } from 'typeorm';
import { WORKER_DATA_SOURCE } from '../lib/index.js';
import { ensureServerDatabase, resetWorkerTables, testDatabases, workerDatabaseName } from './support/databases.js';
import { tempDatabase, waitFor } from './support/test-app.js';

/** GET /health/workers (terminus): the `workers` indicator's summary, queues cut to pending and failed. */
async function workersHealth(server: App): Promise<Record<string, unknown>> {
  const { body } = await request(server).get('/health/workers').expect(200);
  expect(body).toMatchObject({ status: 'ok', error: {}, info: { workers: { status: 'up' } } });
  const { status: _status, queues, ...summary } = body.info.workers as { status: string; queues: QueueStatistics[] };
  return { ...summary, queues: queues.map(({ queueName, pending, failed }) => ({ queueName, pending, failed })) };
}

/** The health summary of the sample when only email-queue holds rows. */
function healthWithEmailRows(active: number, failed: number) {
  return {
    active,
    failed,
    total: active + failed,
    queues: [
      { queueName: 'account-sync-queue', pending: 0, failed: 0 },
      { queueName: 'email-queue', pending: active, failed },
      { queueName: 'maintenance-queue', pending: 0, failed: 0 },
      { queueName: 'report-queue', pending: 0, failed: 0 },
      { queueName: 'webhook-queue', pending: 0, failed: 0 },
    ],
  };
}

const EMPTY_HEALTH = healthWithEmailRows(0, 0);

type App = Parameters<typeof request>[0];

/** The sample's operator endpoints take this bearer token in the tests (see AdminTokenGuard). */
const ADMIN_TOKEN = 'sample-test-token';

/** A client of the operator endpoints: every request carries the admin token. */
function admin(server: App) {
  return request.agent(server).set('authorization', `Bearer ${ADMIN_TOKEN}`);
}

describe.each(testDatabases())('sample app on $name (e2e)', (db) => {
  let app: INestApplication | undefined;
  let cleanup: (() => void) | undefined;

  /**
   * Boots the sample on its own SQLite file, or on a server database whose tables the package's
   * migrations created; the cron is off unless asked so counts stay exact.
   */
  async function startSample(options: SampleAppOptions = {}): Promise<INestApplication> {
    const database = tempDatabase();
    cleanup = database.cleanup;
    const databaseUrl = db.serverUrl ? await ensureServerDatabase(db, workerDatabaseName('sample')) : undefined;
    const moduleRef = await Test.createTestingModule({
      imports: [
        AppModule.register({
          autoStart: false,
          digestCron: false,
          queueReport: false,
          adminToken: ADMIN_TOKEN,
          ...options,
          database: database.file,
          databaseUrl,
        }),
      ],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    await resetWorkerTables(app.get<DataSource>(WORKER_DATA_SOURCE));
    return app;
  }

  afterEach(async () => {
    // Emptied before the next test's app starts polling (at init, before that test could empty them).
    if (app) await resetWorkerTables(app.get<DataSource>(WORKER_DATA_SOURCE));
    await app?.close();
    cleanup?.();
    app = undefined;
    cleanup = undefined;
  });

  it('queues a notification, runs it through POST /workers/run and reports health before and after', async () => {
    const server = (await startSample()).getHttpServer();

    expect(await workersHealth(server)).toEqual(EMPTY_HEALTH);

    const dispatched = await request(server).post('/notifications').send({ userId: '123', message: 'Hi' }).expect(201);
    expect(dispatched.body).toEqual({ id: expect.any(String) });
    // Queued, not sent: nothing polls in this app.
    await request(server).get('/mail/sent').expect(200, []);
    expect(await workersHealth(server)).toEqual(healthWithEmailRows(1, 0));

    const run = await admin(server).post('/workers/run').send({ queueName: 'email-queue' }).expect(200);
    expect(run.body).toEqual({
      success: true,
      message: 'Worker started',
      result: { queueName: 'email-queue', processed: 1, failed: 0, retried: 0, cancelled: 0 },
    });

    await request(server)
      .get('/mail/sent')
      .expect(200, [{ to: 'user-123@example.com', message: 'Hi' }]);
    expect(await workersHealth(server)).toEqual(EMPTY_HEALTH);
  });

  it('queues a batch: all notifications or, when one is invalid, none', async () => {
    const server = (await startSample()).getHttpServer();

    const rejected = await request(server)
      .post('/notifications/batch')
      .send({ notifications: [{ userId: '1', message: 'first' }, { userId: '2' }] })
      .expect(400);
    expect(rejected.body).toEqual({ error: 'userId and message must be non-empty strings' });
    // Nothing was queued: the batch is checked first, and on servers written in one transaction.
    expect(await workersHealth(server)).toEqual(EMPTY_HEALTH);

    const accepted = await request(server)
      .post('/notifications/batch')
      .send({
        notifications: [
          { userId: '1', message: 'first' },
          { userId: '2', message: 'second' },
        ],
      })
      .expect(201);
    expect(accepted.body).toEqual({ ids: [expect.any(String), expect.any(String)] });
    expect(await workersHealth(server)).toEqual(healthWithEmailRows(2, 0));
  });

  it('defaults POST /workers/run to the seed options and leaves other queues alone', async () => {
    const server = (await startSample()).getHttpServer();
    await request(server).post('/notifications').send({ userId: '7', message: 'Still queued' }).expect(201);

    const run = await admin(server).post('/workers/run').expect(200);

    expect(run.body.result).toEqual({ queueName: 'default', processed: 0, failed: 0, retried: 0, cancelled: 0 });
    await request(server).get('/mail/sent').expect(200, []);
    expect((await workersHealth(server)).active).toBe(1);
  });

  it('counts an event that used up its attempts as failed', async () => {
    const started = await startSample();
    const server = started.getHttpServer();
    jest.spyOn(started.get(MailService), 'send').mockRejectedValue(new Error('SMTP down'));
    await request(server).post('/notifications').send({ userId: '9', message: 'Lost' }).expect(201);

    const run = await admin(server).post('/workers/run').send({ queueName: 'email-queue', retries: 1 }).expect(200);

    expect(run.body.result).toEqual({ queueName: 'email-queue', processed: 0, failed: 1, retried: 0, cancelled: 0 });
    expect(await workersHealth(server)).toEqual(healthWithEmailRows(0, 1));
  });

  it('answers 400 with the library message for invalid run options and bad notifications', async () => {
    const server = (await startSample()).getHttpServer();

    const negative = await admin(server)
      .post('/workers/run')
      .send({ queueName: 'email-queue', retries: -1 })
      .expect(400);
    expect(negative.body).toEqual({ error: expect.stringContaining('"retries": must be an integer ≥ 1 (got -1)') });
    // The seed's `||` would have turned 0 into 3; here it is reported.
    const zero = await admin(server).post('/workers/run').send({ retries: 0 }).expect(400);
    expect(zero.body.error).toContain('"retries"');
    const textDelay = await admin(server).post('/workers/run').send({ runAfterSeconds: 'soon' }).expect(400);
    expect(textDelay.body.error).toContain('"runAfterSeconds"');

    const missing = await request(server).post('/notifications').send({ userId: '1' }).expect(400);
    expect(missing.body).toEqual({ error: 'userId and message must be non-empty strings' });
    expect(await workersHealth(server)).toEqual(EMPTY_HEALTH);
  });

  it('answers 503 with the reason when the queue statistics cannot be read', async () => {
    const started = await startSample();
    jest.spyOn(started.get(WorkerService), 'getQueueStatistics').mockRejectedValue(new Error('database is locked'));

    const { body } = await request(started.getHttpServer()).get('/health/workers').expect(503);
    expect(body).toMatchObject({
      status: 'error',
      error: { workers: { status: 'down', message: 'Queue statistics unavailable: database is locked' } },
    });
  });

  it("reports each queue's statistics, and 503 once a queue has more failed events than allowed", async () => {
    const started = await startSample();
    const server = started.getHttpServer();
    await request(server).post('/notifications').send({ userId: '5', message: 'Due' }).expect(201);
    const { body } = await request(server).get('/health/workers').expect(200);
    const queues = body.info.workers.queues as QueueStatistics[];
    expect(queues.find((queue) => queue.queueName === 'email-queue')).toEqual({
      queueName: 'email-queue',
      pending: 1,
      due: 1,
      running: 0,
      delayed: 0,
      failed: 0,
      oldestDueAgeMs: expect.any(Number),
      paused: false,
    });

    // The sample allows 100 failed events per queue (WorkerHealthModule.register({ maxFailed: 100 })).
    jest.spyOn(started.get(WorkerService), 'getQueueStatistics').mockResolvedValue([
      {
        queueName: 'email-queue',
        pending: 0,
        due: 0,
        running: 0,
        delayed: 0,
        failed: 101,
        oldestDueAgeMs: null,
        paused: false,
      },
    ]);
    const down = await request(server).get('/health/workers').expect(503);
    expect(down.body.error.workers).toMatchObject({
      status: 'down',
      problems: ['email-queue: 101 failed events (max 100)'],
    });
  });

  it('serves Prometheus metrics at GET /metrics', async () => {
    const server = (await startSample()).getHttpServer();
    await request(server).post('/notifications').send({ userId: '8', message: 'Counted' }).expect(201);
    await admin(server).post('/workers/run').send({ queueName: 'email-queue' }).expect(200);

    const scraped = await request(server)
      .get('/metrics')
      .expect(200)
      .expect('content-type', /^text\/plain/);
    expect(scraped.text).toContain(
      'nestjs_workers_events_dispatched_total{queue="email-queue",event="EmailNotificationEvent"} 1',
    );
    expect(scraped.text).toContain(
      'nestjs_workers_events_processed_total{queue="email-queue",event="EmailNotificationEvent"} 1',
    );
    expect(scraped.text).toContain('nestjs_workers_queue_pending{queue="email-queue"} 0');
  });

  it('lists, shows, retries, deletes and purges failed events over REST, answering 404 and 400 for bad requests', async () => {
    const started = await startSample();
    const server = started.getHttpServer();
    jest.spyOn(started.get(MailService), 'send').mockRejectedValue(new Error('SMTP down'));
    for (const userId of ['1', '2', '3'])
      await request(server).post('/notifications').send({ userId, message: 'Lost' }).expect(201);
    await admin(server).post('/workers/run').send({ queueName: 'email-queue', retries: 1 }).expect(200);

    const page = await admin(server).get('/failed-events?queueName=email-queue&pageSize=2').expect(200);
    expect(page.body).toMatchObject({ total: 3, page: 1, pageSize: 2 });
    // Newest first; the three failed concurrently (concurrency 4), so their order is the order they failed in.
    const all = (await admin(server).get('/failed-events').expect(200)).body.items as {
      id: string;
      failedAt: string;
    }[];
    const failedAts = all.map((item) => Date.parse(item.failedAt));
    expect(failedAts).toEqual([...failedAts].sort((a, b) => b - a));
    expect(page.body.items.map((item: { id: string }) => item.id)).toEqual(all.slice(0, 2).map((item) => item.id));
    const [newest] = page.body.items as { id: string; error: string }[];
    const shown = await admin(server).get(`/failed-events/${newest!.id}`).expect(200);
    expect(shown.body).toMatchObject({ id: newest!.id, eventName: 'EmailNotificationEvent', attempts: 1 });
    expect(shown.body.error).toContain('SMTP down');

    await admin(server).post(`/failed-events/${newest!.id}/retry`).expect(200, { retried: 1 });
    await admin(server)
      .post(`/failed-events/${newest!.id}/retry`)
      .expect(404, { error: `No failed event with id "${newest!.id}" in the failed store` });
    expect(await workersHealth(server)).toEqual(healthWithEmailRows(1, 2));
    await admin(server).delete(`/failed-events/${page.body.items[1].id}`).expect(204);
    await admin(server).delete(`/failed-events/${page.body.items[1].id}`).expect(404);
    await admin(server).post('/failed-events/retry').send({ queueName: 'email-queue' }).expect(200, { retried: 1 });
    expect(await workersHealth(server)).toEqual(healthWithEmailRows(2, 0));

    const badPage = await admin(server).get('/failed-events?pageSize=1000').expect(400);
    expect(badPage.body.error).toContain('"pageSize": must be at most 500 (got 1000)');
    expect((await admin(server).get('/failed-events?page=first').expect(400)).body.error).toContain('"page"');
    expect((await admin(server).get('/failed-events/abc').expect(400)).body.error).toContain(
      'must be a failed event id',
    );
    expect((await admin(server).delete('/failed-events?olderThan=yesterday').expect(400)).body.error).toContain(
      '"olderThan": must be a valid Date',
    );
    await admin(server)
      .delete(`/failed-events?olderThan=${new Date(Date.now() + 1000).toISOString()}`)
      .expect(200, { deleted: 0 });
    expect(await workersHealth(server)).toEqual(healthWithEmailRows(2, 0));
  });

  it('processes a notification by polling alone when autoStart is on', async () => {
    const server = (await startSample({ autoStart: true })).getHttpServer();

    await request(server).post('/notifications').send({ userId: '42', message: 'Polled' }).expect(201);

    await waitFor(async () => (await request(server).get('/mail/sent')).body.length === 1);
    await request(server)
      .get('/mail/sent')
      .expect(200, [{ to: 'user-42@example.com', message: 'Polled' }]);
    await waitFor(async () => (await workersHealth(server)).total === 0);
  });

  it('registers the daily digest cron once, and the digest it queues runs on maintenance-queue', async () => {
    const started = await startSample({ digestCron: true });
    const server = started.getHttpServer();
    const registries = started.get(SchedulerRegistry, { strict: false, each: true });
    // One ScheduleModule in the app: a second one would register, and fire, every @Cron() twice.
    expect(registries.map((registry) => registry.doesExist('cron', DIGEST_CRON_JOB))).toEqual([true]);
    const job = started.get(SchedulerRegistry).getCronJob(DIGEST_CRON_JOB);
    // Stopped so that the 7 o'clock slot cannot add a digest to the exact counts during the test.
    await job.stop();
    // Daily, as its name says: the next two runs are a day apart (23 to 25 hours across a clock change).
    const [next, after] = job.nextDates(2).map((date) => date.toMillis());
    expect(after! - next!).toBeGreaterThanOrEqual(23 * 3600_000);
    expect(after! - next!).toBeLessThanOrEqual(25 * 3600_000);

    const id = await started.get(DigestScheduler).dispatchDigest();

    expect(id).toEqual(expect.any(String));
    expect((await workersHealth(server)).queues).toContainEqual({
      queueName: 'maintenance-queue',
      pending: 1,
      failed: 0,
    });
    const run = await admin(server)
      .post('/workers/run')
      .send({ queueName: 'maintenance-queue', retries: 2 })
      .expect(200);
    expect(run.body.result.processed).toBe(1);
    const sent = (await request(server).get('/mail/sent').expect(200)).body as { to: string; message: string }[];
    expect(sent).toEqual([
      { to: DIGEST_RECIPIENT, message: expect.stringMatching(/^Daily digest for \d{4}-\d{2}-\d{2}$/) },
    ]);
  });

  it('queues urgent notifications first, a deduplicated one once, and cancels a queued one', async () => {
    const started = await startSample();
    const server = started.getHttpServer();
    const dataSource = started.get<DataSource>(WORKER_DATA_SOURCE);
    await request(server).post('/notifications').send({ userId: '1', message: 'newsletter' }).expect(201);
    await request(server)
      .post('/notifications')
      .send({ userId: '2', message: 'password reset', urgent: true })
      .expect(201);
    const claimOrder = (await dataSource.query(
      'SELECT payload FROM nestjs_workers ORDER BY priority, available_at, id',
    )) as { payload: string }[];
    expect(claimOrder.map((row) => JSON.parse(row.payload).message)).toEqual(['password reset', 'newsletter']);

    const first = await request(server)
      .post('/notifications')
      .send({ userId: '3', message: 'digest', dedupeKey: 'digest:3' })
      .expect(201);
    const again = await request(server)
      .post('/notifications')
      .send({ userId: '3', message: 'digest', dedupeKey: 'digest:3' })
      .expect(201);
    expect(again.body).toEqual(first.body);
    const badKey = await request(server)
      .post('/notifications')
      .send({ userId: '3', message: 'x', dedupeKey: '' })
      .expect(400);
    expect(badKey.body.error).toContain('Invalid nestjs-workers option "uniqueKey"');
    await request(server)
      .post('/notifications')
      .send({ userId: '3', message: 'x', urgent: 'yes' })
      .expect(400, { error: 'urgent must be a boolean' });

    await admin(server).delete(`/notifications/${first.body.id}`).expect(200, { id: first.body.id, wasRunning: false });
    await admin(server).delete(`/notifications/${first.body.id}`).expect(404);
    const badId = await admin(server).delete('/notifications/abc').expect(400);
    expect(badId.body.error).toContain('Invalid nestjs-workers option "id"');

    await admin(server).post('/workers/run').send({ queueName: 'email-queue' }).expect(200);
    const sent = (await request(server).get('/mail/sent').expect(200)).body as { message: string }[];
    expect(sent.map((mail) => mail.message).sort()).toEqual(['newsletter', 'password reset']);
  });

  it('exports a report: GET /jobs/:id shows its progress while it runs and its result once kept; GET /jobs finds it', async () => {
    const server = (await startSample()).getHttpServer();
    const { body } = await admin(server).post('/reports').send({ month: '2026-11', rows: 300 }).expect(201);
    const id = (body as { id: string }).id;
    await admin(server)
      .get(`/jobs/${id}`)
      .expect(200)
      .expect((response) => {
        expect(response.body).toMatchObject({ id, queueName: 'report-queue', state: 'waiting', progress: null });
      });

    const run = admin(server)
      .post('/workers/run')
      .send({ queueName: 'report-queue' })
      .then((response) => response);
    let running: Record<string, unknown> = {};
    await waitFor(async () => {
      running = (await admin(server).get(`/jobs/${id}`).expect(200)).body as Record<string, unknown>;
      return running.progress !== null;
    }, 10_000);
    expect(running).toMatchObject({ state: 'running', attempts: 1, progress: { of: 300 } });

    expect((await run).body).toMatchObject({ result: { queueName: 'report-queue', processed: 1 } });
    await admin(server)
      .get(`/jobs/${id}`)
      .expect(200)
      .expect((response) => {
        expect(response.body).toMatchObject({
          state: 'completed',
          progress: { done: 300, of: 300 },
          result: { month: '2026-11', rows: 300, file: 'exports/report-2026-11.csv' },
        });
      });
    const listed = await admin(server)
      .get('/jobs')
      .query({ queueName: 'report-queue', state: 'completed', payload: JSON.stringify({ month: '2026-11' }) })
      .expect(200);
    expect(listed.body).toMatchObject({ total: 1, items: [{ id }] });
    await admin(server).get('/jobs/999999').expect(404);
    await admin(server).get('/jobs/abc').expect(400);
    await admin(server).get('/jobs').query({ state: 'finished' }).expect(400);
    await request(server).get(`/jobs/${id}`).expect(401);
  });

  it('guards the operator endpoints: 401 without the admin token, 403 with a wrong one, and nothing changes', async () => {
    const started = await startSample();
    const server = started.getHttpServer();
    const queued = await request(server).post('/notifications').send({ userId: '1', message: 'kept' }).expect(201);
    const wrong = (call: request.Test) => call.set('authorization', 'Bearer not-the-token');

    for (const call of [
      () => request(server).post('/workers/run').send({ queueName: 'email-queue' }),
      () => request(server).get('/failed-events'),
      () => request(server).post('/failed-events/retry'),
      () => request(server).delete(`/failed-events?olderThan=${new Date().toISOString()}`),
      () => request(server).delete(`/notifications/${queued.body.id}`),
    ]) {
      expect((await call().expect(401)).body).toEqual({
        error: 'Send the admin token as "Authorization: Bearer <token>"',
      });
      expect((await wrong(call()).expect(403)).body).toEqual({ error: 'Wrong admin token' });
    }

    // Nothing ran and nothing was cancelled; the public endpoints stay open.
    await request(server).get('/mail/sent').expect(200, []);
    expect(await workersHealth(server)).toEqual(healthWithEmailRows(1, 0));
    await admin(server)
      .delete(`/notifications/${queued.body.id}`)
      .expect(200, { id: queued.body.id, wasRunning: false });
  });

  it('moves a webhook to an unreachable partner to the failed store after its 3 attempts, and delivers a good one', async () => {
    const started = await startSample({ autoStart: true });
    const server = started.getHttpServer();
    await request(server)
      .post('/webhooks')
      .send({ url: 'not a url' })
      .expect(400, { error: 'url must be an http(s) URL' });

    const failing = await request(server)
      .post('/webhooks')
      .send({ url: 'https://unreachable.example/hook', body: { order: 7 } })
      .expect(201);
    const good = await request(server)
      .post('/webhooks')
      .send({ url: 'https://partner.example/hook', body: { order: 8 } })
      .expect(201);

    // webhook-queue: 3 attempts, 2 s apart.
    await waitFor(
      async () => (await admin(server).get('/failed-events?queueName=webhook-queue')).body.total === 1,
      15_000,
    );
    const [failed] = (await admin(server).get('/failed-events?queueName=webhook-queue').expect(200)).body
      .items as Record<string, unknown>[];
    expect(failed).toMatchObject({
      eventName: 'WebhookDeliveryEvent',
      attempts: 3,
      payload: { url: 'https://unreachable.example/hook', body: { order: 7 } },
    });
    expect(failed!.error).toContain('connect ECONNREFUSED unreachable.example:443');
    expect(failing.body.id).not.toEqual(good.body.id);
    await request(server)
      .get('/webhooks/delivered')
      .expect(200, [{ url: 'https://partner.example/hook', body: { order: 8 } }]);
  });

  it('dispatches each slot of the recurring queue report once, and the report mails the statistics', async () => {
    const started = await startSample({ queueReport: true });
    const server = started.getHttpServer();
    await request(server).post('/notifications').send({ userId: '5', message: 'pending' }).expect(201);
    const scheduler = started.get(RecurringEventScheduler);
    expect(scheduler.list()).toEqual([
      expect.objectContaining({ name: QUEUE_REPORT_SCHEDULE, cron: '0 */5 * * * *', queueName: 'maintenance-queue' }),
    ]);
    const slot = new Date(Math.floor(Date.now() / 300_000) * 300_000);
    expect(await scheduler.dispatchSlot(QUEUE_REPORT_SCHEDULE, slot)).toEqual(expect.any(String));
    expect(await scheduler.dispatchSlot(QUEUE_REPORT_SCHEDULE, slot)).toBeUndefined();
    const run = await admin(server)
      .post('/workers/run')
      .send({ queueName: 'maintenance-queue', retries: 2 })
      .expect(200);
    expect(run.body.result.processed).toBe(1);
    const sent = (await request(server).get('/mail/sent').expect(200)).body as { to: string; message: string }[];
    expect(sent).toEqual([
      {
        to: DIGEST_RECIPIENT,
        message:
          'Queue report: account-sync-queue: 0 pending, 0 failed; email-queue: 1 pending, 0 failed; maintenance-queue: 1 pending, 0 failed; report-queue: 0 pending, 0 failed; webhook-queue: 0 pending, 0 failed',
      },
    ]);
  });

  it('pauses and resumes a queue over REST (guarded, 404 for an unknown queue): paused events wait, then run', async () => {
    const app = await startSample({ autoStart: true });
    const server = app.getHttpServer() as App;
    await request(server).post('/queues/email-queue/pause').expect(401);
    expect((await admin(server).post('/queues/email-queue/pause').expect(200)).body).toEqual({
      queueName: 'email-queue',
      paused: true,
    });
    expect((await admin(server).get('/queues/paused').expect(200)).body).toEqual([
      { queueName: 'email-queue', pausedAt: expect.any(String) },
    ]);
    await admin(server).post('/queues/no-such-queue/pause').expect(404);
    await request(server).post('/notifications').send({ userId: '7', message: 'Held' }).expect(201);
    // The queue polls every 500 ms: three polls pass and the event still waits.
    await new Promise((resolve) => setTimeout(resolve, 1600));
    expect(app.get(MailService).sent).toEqual([]);
    await admin(server).post('/queues/email-queue/resume').expect(200);
    await waitFor(() => app.get(MailService).sent.length === 1, 5000);
    expect((await admin(server).get('/queues/paused').expect(200)).body).toEqual([]);
  });

  it('syncs accounts one at a time per user, a burst of edits as one sync with its last fields', async () => {
    const app = await startSample({ autoStart: true });
    const server = app.getHttpServer() as App;
    // A burst for user a: debounced into one sync, with the last fields.
    const first = await request(server)
      .post('/accounts/a/sync')
      .send({ fields: ['name'] })
      .expect(201);
    const second = await request(server)
      .post('/accounts/a/sync')
      .send({ fields: ['email'] })
      .expect(201);
    expect(second.body.id).toBe(first.body.id);
    // Users b and c: three syncs each, one at a time per user (distinct unique keys, no debounce across them).
    const events = app.get(EventService);
    for (let round = 0; round < 3; round++) {
      for (const userId of ['b', 'c']) {
        await events.dispatch(new AccountSyncEvent({ userId, fields: [`f${round}`] }));
      }
    }
    await waitFor(() => app.get(AccountSyncLog).runs.length === 7, 15_000);
    const runs = (await request(server).get('/accounts/syncs').expect(200)).body as SyncRun[];
    expect(runs.filter((run) => run.userId === 'a').map((run) => run.fields)).toEqual([['email']]);
    for (const userId of ['b', 'c']) {
      const mine = runs.filter((run) => run.userId === userId).sort((x, y) => x.startedAt - y.startedAt);
      expect(mine).toHaveLength(3);
      // Never two syncs of one user at once.
      for (let index = 1; index < mine.length; index++) {
        expect(mine[index]!.startedAt).toBeGreaterThanOrEqual(mine[index - 1]!.endedAt);
      }
    }
    // Different users did run side by side.
    const b = runs.find((run) => run.userId === 'b')!;
    const c = runs.find((run) => run.userId === 'c')!;
    expect(Math.max(b.startedAt, c.startedAt)).toBeLessThan(Math.min(b.endedAt, c.endedAt));
    await request(server).post('/accounts/a/sync').send({ fields: 'name' }).expect(400);
  });

  it('delivers at once from the partner budget the webhook workers share: 5 a second, then 429', async () => {
    const app = await startSample();
    const server = app.getHttpServer() as App;
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, n) =>
        request(server)
          .post('/webhooks/now')
          .send({ url: `https://partner.example/hook/${n}` }),
      ),
    );
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 201, 201, 201, 201, 201, 201, 201]);
    // 5 in the first second; the last 3 waited for the window to move on.
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(app.get(PartnerApiService).delivered).toHaveLength(8);
    const limiter = app.get(WorkerRateLimiter);
    while (await limiter.tryTake('partner-api'));
    const refused = await Promise.all(
      Array.from({ length: 12 }, () =>
        request(server).post('/webhooks/now').send({ url: 'https://partner.example/x' }),
      ),
    );
    expect(refused.some((answer) => answer.status === 429)).toBe(true);
  });
});
