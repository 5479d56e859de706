/**
 * A database driver package that is not installed: startup fails with MissingDatabaseDriverError and
 * the install command. Each case runs a real process in which the driver cannot be resolved
 * (test/fixtures/hide-modules.ts), as in an app that never installed it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildWorkerProcess, compiledFixture } from './support/worker-processes.js';

interface StartupOutcome {
  started?: boolean;
  error?: { name: string; message: string; installCommand?: string };
}

async function startWithout(hiddenPackages: string, database?: object): Promise<StartupOutcome> {
  // The embedded default is ./nestjs-workers.sqlite: a folder of its own for it.
  const cwd = mkdtempSync(join(tmpdir(), 'nestjs-workers-driver-'));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', compiledFixture('hide-modules.js'), compiledFixture('startup-app.js')],
    {
      env: { ...process.env, HIDE_MODULES: hiddenPackages, WORKERS_FIXTURE_DATABASE: JSON.stringify(database ?? {}) },
      cwd,
      timeout: 30_000,
    },
  ).finally(() => rmSync(cwd, { recursive: true, force: true }));
  return JSON.parse(stdout.trim().split('\n').pop()!) as StartupOutcome;
}

describe('a database driver that is not installed', () => {
  beforeAll(() => buildWorkerProcess(), 120_000);

  it('fails startup of the embedded default with MissingDatabaseDriverError and "npm install better-sqlite3@12"', async () => {
    const outcome = await startWithout('better-sqlite3');
    expect(outcome.error).toEqual({
      name: 'MissingDatabaseDriverError',
      installCommand: 'npm install better-sqlite3@12',
      message: expect.stringContaining(
        'The embedded SQLite database (type "better-sqlite3", the default) needs the better-sqlite3 package',
      ),
    });
    // The same process starts once the driver is there: the hiding is all that failed it.
    expect(await startWithout('')).toEqual({ started: true });
  });

  it.each([
    ['postgres', 'pg', 'npm install pg'],
    ['mariadb', 'mysql2', 'npm install mysql2'],
    ['mysql', 'mysql2', 'npm install mysql2'],
  ])('fails startup of type %s without %s, giving "%s"', async (type, packageName, installCommand) => {
    // The driver is loaded before any connection is tried: no server is needed at this address.
    const outcome = await startWithout(packageName, {
      type,
      url: `${type === 'postgres' ? 'postgres' : 'mysql'}://user@127.0.0.1:9/db`,
    });
    expect(outcome.error).toEqual({
      name: 'MissingDatabaseDriverError',
      installCommand,
      message: `Database type "${type}" needs the ${packageName} package, which is not installed: run ${installCommand}`,
    });
  });
});
