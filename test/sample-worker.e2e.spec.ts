/**
 * The sample's standalone worker (NestFactory.createApplicationContext) as a process of its own: it
 * shares the SQLite file with the app that dispatches, runs what it finds, and exits 0 after draining
 * on SIGTERM.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { promisify } from 'node:util';
import type { INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { DataSource } from 'typeorm';
import { EventService, WORKER_DATA_SOURCE } from '../lib/index.js';
import { AppModule } from '../sample/app.module.js';
import { EmailNotificationEvent } from '../sample/email-notification.event.js';
import { pendingRows, tempDatabase, waitFor } from './support/test-app.js';

const OUT_DIR = 'dist/e2e-sample';

describe('sample standalone worker process', () => {
  let worker: ChildProcess | undefined;
  let dispatcher: INestApplicationContext | undefined;
  const database = tempDatabase();

  beforeAll(async () => {
    // The worker runs as plain Node, as in production: compile the sample (and the library) first.
    await promisify(execFile)('npx', ['tsc', '-p', 'tsconfig.sample.json', '--outDir', OUT_DIR]);
  }, 120_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null) worker.kill('SIGKILL');
    await dispatcher?.close();
    database.cleanup();
  });

  it('runs events dispatched by another process and exits 0 after a graceful drain on SIGTERM', async () => {
    dispatcher = await (
      await Test.createTestingModule({
        imports: [AppModule.register({ autoStart: false, digestCron: false, database: database.file })],
      }).compile()
    ).init();
    const events = dispatcher.get(EventService);
    const dataSource = dispatcher.get<DataSource>(WORKER_DATA_SOURCE);

    const child = spawn(process.execPath, [`${OUT_DIR}/sample/worker.js`], {
      env: { ...process.env, WORKERS_DB: database.file, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker = child;
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(() => output.includes('Worker running'), 30_000);

    for (const userId of ['1', '2', '3'])
      await events.dispatch(new EmailNotificationEvent({ userId, message: `Hello ${userId}` }));
    await waitFor(async () => (await pendingRows(dataSource)).length === 0, 15_000);
    for (const userId of ['1', '2', '3'])
      expect(output).toContain(`Mail to user-${userId}@example.com: Hello ${userId}`);

    child.kill('SIGTERM');
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(output).not.toMatch(/ERROR/);
  }, 60_000);
});
