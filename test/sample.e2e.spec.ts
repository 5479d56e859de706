import { jest } from '@jest/globals';
import type { INestApplication } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Test } from '@nestjs/testing';
import request from 'supertest';
import { WorkerService } from '../lib/index.js';
import { AppModule, type SampleAppOptions } from '../sample/app.module.js';
import { DIGEST_RECIPIENT } from '../sample/daily-digest.event.js';
import { DIGEST_CRON_JOB, DigestScheduler } from '../sample/digest.scheduler.js';
import { MailService } from '../sample/mail.service.js';
import type { DataSource } from 'typeorm';
import { WORKER_DATA_SOURCE } from '../lib/index.js';
import { ensureServerDatabase, resetWorkerTables, testDatabases } from './support/databases.js';
import { tempDatabase, waitFor } from './support/test-app.js';

/** GET /health/workers of the sample when only email-queue holds rows. */
function healthWithEmailRows(active: number, failed: number) {
  const email = { queueName: 'email-queue', active, failed, total: active + failed };
  return {
    active,
    failed,
    total: active + failed,
    queues: [email, { queueName: 'maintenance-queue', active: 0, failed: 0, total: 0 }],
  };
}

const EMPTY_HEALTH = healthWithEmailRows(0, 0);

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
    const databaseUrl = db.serverUrl ? await ensureServerDatabase(db, `nestjs_workers_sample_${process.env.JEST_WORKER_ID ?? '0'}`) : undefined;
    const moduleRef = await Test.createTestingModule({
      imports: [AppModule.register({ autoStart: false, digestCron: false, ...options, database: database.file, databaseUrl })],
    }).compile();
    app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    await resetWorkerTables(app.get<DataSource>(WORKER_DATA_SOURCE));
    return app;
  }

  afterEach(async () => {
    await app?.close();
    cleanup?.();
    app = undefined;
    cleanup = undefined;
  });

  it('queues a notification, runs it through POST /workers/run and reports health before and after', async () => {
    const server = (await startSample()).getHttpServer();

    await request(server).get('/health/workers').expect(200, EMPTY_HEALTH);

    const dispatched = await request(server).post('/notifications').send({ userId: '123', message: 'Hi' }).expect(201);
    expect(dispatched.body).toEqual({ id: expect.any(String) });
    // Queued, not sent: nothing polls in this app.
    await request(server).get('/mail/sent').expect(200, []);
    await request(server).get('/health/workers').expect(200, healthWithEmailRows(1, 0));

    const run = await request(server).post('/workers/run').send({ queueName: 'email-queue' }).expect(200);
    expect(run.body).toEqual({
      success: true,
      message: 'Worker started',
      result: { queueName: 'email-queue', processed: 1, failed: 0, retried: 0 },
    });

    await request(server).get('/mail/sent').expect(200, [{ to: 'user-123@example.com', message: 'Hi' }]);
    await request(server).get('/health/workers').expect(200, EMPTY_HEALTH);
  });

  it('queues a batch in one transaction: all notifications or, when one is invalid, none', async () => {
    const server = (await startSample()).getHttpServer();

    const rejected = await request(server)
      .post('/notifications/batch')
      .send({ notifications: [{ userId: '1', message: 'first' }, { userId: '2' }] })
      .expect(400);
    expect(rejected.body).toEqual({ error: 'userId and message must be non-empty strings' });
    // The first notification was written inside the transaction, and rolled back with it.
    await request(server).get('/health/workers').expect(200, EMPTY_HEALTH);

    const accepted = await request(server)
      .post('/notifications/batch')
      .send({ notifications: [{ userId: '1', message: 'first' }, { userId: '2', message: 'second' }] })
      .expect(201);
    expect(accepted.body).toEqual({ ids: [expect.any(String), expect.any(String)] });
    await request(server).get('/health/workers').expect(200, healthWithEmailRows(2, 0));
  });

  it('defaults POST /workers/run to the seed options and leaves other queues alone', async () => {
    const server = (await startSample()).getHttpServer();
    await request(server).post('/notifications').send({ userId: '7', message: 'Still queued' }).expect(201);

    const run = await request(server).post('/workers/run').expect(200);

    expect(run.body.result).toEqual({ queueName: 'default', processed: 0, failed: 0, retried: 0 });
    await request(server).get('/mail/sent').expect(200, []);
    expect((await request(server).get('/health/workers').expect(200)).body.active).toBe(1);
  });

  it('counts an event that used up its attempts as failed', async () => {
    const started = await startSample();
    const server = started.getHttpServer();
    jest.spyOn(started.get(MailService), 'send').mockRejectedValue(new Error('SMTP down'));
    await request(server).post('/notifications').send({ userId: '9', message: 'Lost' }).expect(201);

    const run = await request(server).post('/workers/run').send({ queueName: 'email-queue', retries: 1 }).expect(200);

    expect(run.body.result).toEqual({ queueName: 'email-queue', processed: 0, failed: 1, retried: 0 });
    await request(server).get('/health/workers').expect(200, healthWithEmailRows(0, 1));
  });

  it('answers 400 with the library message for invalid run options and bad notifications', async () => {
    const server = (await startSample()).getHttpServer();

    const negative = await request(server).post('/workers/run').send({ queueName: 'email-queue', retries: -1 }).expect(400);
    expect(negative.body).toEqual({ error: expect.stringContaining('"retries": must be an integer ≥ 1 (got -1)') });
    // The seed's `||` would have turned 0 into 3; here it is reported.
    const zero = await request(server).post('/workers/run').send({ retries: 0 }).expect(400);
    expect(zero.body.error).toContain('"retries"');
    const textDelay = await request(server).post('/workers/run').send({ runAfterSeconds: 'soon' }).expect(400);
    expect(textDelay.body.error).toContain('"runAfterSeconds"');

    const missing = await request(server).post('/notifications').send({ userId: '1' }).expect(400);
    expect(missing.body).toEqual({ error: 'userId and message must be non-empty strings' });
    await request(server).get('/health/workers').expect(200, EMPTY_HEALTH);
  });

  it('answers 500 with the error message when health cannot be read', async () => {
    const started = await startSample();
    jest.spyOn(started.get(WorkerService), 'getHealth').mockRejectedValue(new Error('database is locked'));

    await request(started.getHttpServer()).get('/health/workers').expect(500, { error: 'database is locked' });
  });

  it('processes a notification by polling alone when autoStart is on', async () => {
    const server = (await startSample({ autoStart: true })).getHttpServer();

    await request(server).post('/notifications').send({ userId: '42', message: 'Polled' }).expect(201);

    await waitFor(async () => (await request(server).get('/mail/sent')).body.length === 1);
    await request(server).get('/mail/sent').expect(200, [{ to: 'user-42@example.com', message: 'Polled' }]);
    await waitFor(async () => (await request(server).get('/health/workers')).body.total === 0);
  });

  it('registers the digest cron once, and the digest it queues runs on maintenance-queue', async () => {
    const started = await startSample({ digestCron: true });
    const server = started.getHttpServer();
    const registries = started.get(SchedulerRegistry, { strict: false, each: true });
    // One ScheduleModule in the app: a second one would register, and fire, every @Cron() twice.
    expect(registries.map((registry) => registry.doesExist('cron', DIGEST_CRON_JOB))).toEqual([true]);
    const job = started.get(SchedulerRegistry).getCronJob(DIGEST_CRON_JOB);
    // Stopped so that a minute boundary during the test cannot add a digest to the exact counts.
    await job.stop();

    const id = await started.get(DigestScheduler).dispatchDigest();

    expect(id).toEqual(expect.any(String));
    expect((await request(server).get('/health/workers').expect(200)).body.queues).toContainEqual({
      queueName: 'maintenance-queue',
      active: 1,
      failed: 0,
      total: 1,
    });
    const run = await request(server).post('/workers/run').send({ queueName: 'maintenance-queue', retries: 2 }).expect(200);
    expect(run.body.result.processed).toBe(1);
    const sent = (await request(server).get('/mail/sent').expect(200)).body as { to: string; message: string }[];
    expect(sent).toEqual([{ to: DIGEST_RECIPIENT, message: expect.stringMatching(/^Daily digest for \d{4}-\d{2}-\d{2}$/) }]);
  });
});
