/**
 * PostgreSQL going away mid-run, on a throwaway server (.ci/start-postgres.sh): three worker
 * processes lose every connection for a while, log, back off, reconnect, and every event still
 * completes, none of them twice at once.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { serverDatabases } from './support/databases.js';
import { waitFor } from './support/test-app.js';
import { buildWorkerProcess, overlappingEvents, SharedQueue, WorkerProcess } from './support/worker-processes.js';

jest.setTimeout(180_000);

const SCRIPT = join(import.meta.dirname, '..', '.ci', 'start-postgres.sh');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function postgresCommand(...args: string[]): string {
  return execFileSync('bash', [SCRIPT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    .trim()
    .split('\n')
    .pop()!;
}

// Runs wherever the PostgreSQL suites run (.ci/run always): the script installs PostgreSQL 15 if needed.
const postgres = serverDatabases().filter((database) => database.type === 'postgres');

describe.each(postgres)('a PostgreSQL restart under load ($name)', (database) => {
  let dir = '';
  let port: number;
  let queue: SharedQueue | undefined;
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    buildWorkerProcess();
    dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-pg-'));
    port = await freePort();
  });

  afterAll(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await queue?.close();
    // Unset when beforeAll failed before making it: then there is no server to stop.
    if (!dir) return;
    postgresCommand('stop', dir);
    rmSync(dir, { recursive: true, force: true });
  });

  it('workers log, back off, reconnect, and every event completes', async () => {
    const url = postgresCommand(dir, String(port));
    queue = await SharedQueue.open(database, url);
    await queue.reset();
    const events = 1000;
    await queue.dispatch(events);
    workers.push(
      ...(await Promise.all(
        ['r1', 'r2', 'r3'].map((label) =>
          WorkerProcess.start(label, queue!, { MP_EVENT_MS: '20', MP_CONCURRENCY: '4', MP_LEASE_SECONDS: '2' }),
        ),
      )),
    );
    await waitFor(async () => (await queue!.runs()).length >= 150, 30_000);

    const downAt = Date.now();
    postgresCommand('stop', dir);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    postgresCommand(dir, String(port));
    const upAt = Date.now();

    // The parent's own pool lost its connections too; TypeORM's pg pool replaces them on demand.
    await waitFor(async () => (await queue!.count('nestjs_workers').catch(() => -1)) === 0, 90_000).catch(
      (error: Error) => {
        throw new Error(
          `${error.message}\n${workers.map((worker) => `--- ${worker.label}\n${worker.output.slice(-3000)}`).join('\n')}`,
        );
      },
    );
    expect(await queue.count('nestjs_failed_workers')).toBe(0);
    const runs = await queue.runs();
    const completed = runs.filter((run) => run.endedAt !== null);
    expect(new Set(completed.map((run) => run.eventN)).size).toBe(events);
    expect(overlappingEvents(completed, () => Date.now())).toEqual([]);
    // The outage was felt and reported, polling backed off, and resumed once the server was back.
    expect(
      workers.some((worker) => /Polling queue mp failed \(\d+ in a row\); next try in \d+ ms/.test(worker.output)),
    ).toBe(true);
    expect(workers.some((worker) => /Queue mp is polling again after \d+ failed polls/.test(worker.output))).toBe(true);
    const finishedAt = Math.max(...completed.map((run) => run.endedAt!));
    process.stdout.write(
      `database=PostgreSQL test=restart events=${events} processes=3 lost=0 outageMs=${upAt - downAt} ` +
        `repeatedRuns=${runs.length - events} secondsAfterRestart=${((finishedAt - upAt) / 1000).toFixed(1)}\n`,
    );
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));
  });
});
