/**
 * A worker process for the memory row of the bench: queues and runs `N` events (argv[2]) on SQLite in
 * 10 rounds and reports its RSS after the first round (warm) and after the last, each after a GC.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NoopEvent, openBenchApp } from './bench-app.js';

const ROUNDS = 10;

async function main(): Promise<void> {
  const total = Number(process.argv[2]);
  const perRound = Math.ceil(total / ROUNDS);
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-rss-'));
  const app = await openBenchApp({ database: join(dir, 'rss.sqlite') });
  const rss = (): number => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().rss;
  };
  let warm = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      await app.events.dispatchMany(Array.from({ length: perRound }, (_, n) => new NoopEvent({ n })));
      let processed = 0;
      while (processed < perRound) {
        const result = await app.workers.runWorker({
          queueName: 'bench',
          retries: 1,
          runAfterSeconds: 0,
          concurrency: 50,
          batchSize: 1000,
        });
        processed += result.processed;
        if (result.processed === 0) throw new Error('the worker stopped processing');
      }
      if (round === 0) warm = rss();
    }
    process.send?.({ warm, end: rss(), rounds: ROUNDS });
  } finally {
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
