/**
 * `node dist/bench/processing-ab.js <other checkout> [database]`: an A/B of processing between this
 * build and another checkout's (built with `npx tsc -p tsconfig.bench.json` there, e.g. a worktree of
 * the base commit), alternating over BENCH_AB_ROUNDS rounds (default 5, the order swapped each
 * round), each measure in a process of its own: one warm-up pass, then 50,000 no-op events by
 * measureProcessing (bench-app.ts), as bench.ts measures ours. `database`: a SQLite file path (default: a temp file per
 * build), or a postgres:// / mysql:// URL of a database per build (suffixed _a and _b, created if
 * missing). Prints each round, the medians and the median of the rounds' ratios: what "costs nothing
 * measurable" is checked with.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IBaseEvent } from '../lib/index.js';
import { type BenchApp, measureProcessing } from './bench-app.js';

const N = 50_000;
const ROUNDS = Number(process.env.BENCH_AB_ROUNDS ?? 5);

type Database = { database: string } | { type: 'postgres' | 'mariadb'; url: string };

/** The database of one build: its own SQLite file, or its own database on the server of `url`. */
function databaseOf(target: string | undefined, build: 'a' | 'b', dir: string): Database {
  if (!target) return { database: join(dir, `ab-${build}.sqlite`) };
  if (!/^(postgres|mysql|mariadb):/.test(target)) return { database: `${target}-${build}` };
  const url = new URL(target);
  url.pathname = `${url.pathname}_${build}`;
  return { type: url.protocol === 'postgres:' ? 'postgres' : 'mariadb', url: url.toString() };
}

/** One measure, in this process: the build at `root`'s bench app on `database`. */
async function measure(root: string, database: Database): Promise<number> {
  const { openBenchApp, NoopEvent } = (await import(join(root, 'dist/bench/bench-app.js'))) as {
    openBenchApp: (database: Database) => Promise<BenchApp>;
    NoopEvent: new (payload: { n: number }) => IBaseEvent;
  };
  const app = await openBenchApp(database);
  try {
    // This build's loop over that build's app: both sides measured by the same code.
    const pass = (): Promise<number> =>
      measureProcessing(app, { count: N, dispatch: true, keepCompleted: false, event: (n) => new NoopEvent({ n }) });
    await pass(); // warm-up
    return await pass();
  } finally {
    await app.close();
  }
}

async function ensureServerDatabase(database: Database): Promise<void> {
  if (!('url' in database)) return;
  const url = new URL(database.url);
  const name = url.pathname.slice(1);
  url.pathname = database.type === 'postgres' ? '/postgres' : '/';
  if (database.type === 'postgres') {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: url.toString() });
    await client.connect();
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name}"`);
    await client.end();
  } else {
    const { default: mysql } = await import('mysql2/promise');
    const connection = await mysql.createConnection(url.toString());
    await connection.query(`CREATE DATABASE IF NOT EXISTS \`${name}\``);
    await connection.end();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const [mode, ...rest] = process.argv.slice(2);
  if (mode === '--measure') {
    process.stdout.write(`${await measure(rest[0]!, JSON.parse(rest[1]!) as Database)}\n`);
    return;
  }
  if (!mode) throw new Error('usage: node dist/bench/processing-ab.js <other checkout> [database]');
  const here = resolve(fileURLToPath(import.meta.url), '../../..');
  const builds = { a: here, b: resolve(mode) };
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-ab-'));
  try {
    const databases = { a: databaseOf(rest[0], 'a', dir), b: databaseOf(rest[0], 'b', dir) };
    for (const database of Object.values(databases)) await ensureServerDatabase(database);
    const rates: Record<'a' | 'b', number[]> = { a: [], b: [] };
    for (let round = 1; round <= ROUNDS; round++) {
      const order: ('a' | 'b')[] = round % 2 === 1 ? ['a', 'b'] : ['b', 'a'];
      for (const build of order) {
        const output = execFileSync(
          process.execPath,
          [fileURLToPath(import.meta.url), '--measure', builds[build], JSON.stringify(databases[build])],
          { cwd: builds[build], encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] },
        );
        rates[build].push(Number(output.trim().split('\n').at(-1)));
      }
      process.stdout.write(`round ${round}: this build ${rates.a.at(-1)}/s, ${builds.b} ${rates.b.at(-1)}/s\n`);
    }
    process.stdout.write(`median: this build ${median(rates.a)}/s, ${builds.b} ${median(rates.b)}/s\n`);
    // Each round's two measures ran back to back on the same machine state: their ratio is steadier
    // than the ratio of the medians when the machine or the databases drift over the rounds.
    const ratios = rates.a.map((rate, index) => rate / rates.b[index]!);
    process.stdout.write(`median of the rounds' ratios (this build ÷ ${builds.b}): ${median(ratios).toFixed(3)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
