/**
 * The bench row of a per-key-limited queue: 'bench-keyed', keyConcurrency 1, no-op events spread over
 * 1,000 concurrency keys, processed by the same loop as the plain row (measureProcessing). Its own
 * file, imported by bench.ts only when this row runs: its event class, once defined, is known to every
 * app opened after, and the plain rows are measured before that.
 */
import { BaseEvent, QueueEvent, type WorkerQueueOptions } from '../lib/index.js';
import { type BenchApp, measureProcessing, NoopEvent, openBenchApp } from './bench-app.js';

export const KEYED_QUEUE = 'bench-keyed';
export const KEYS = 1000;
export const KEY_CONCURRENCY = 1;

@QueueEvent(KEYED_QUEUE, { concurrencyKey: (payload: { n: number }) => `account-${payload.n % KEYS}` })
export class KeyedNoopEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {}
}

/** The queue's options: those of 'bench' (bench-app.ts), plus the limit per key. */
const keyedQueue: WorkerQueueOptions = {
  retries: 1,
  pollIntervalMs: 1000,
  concurrency: 50,
  batchSize: 1000,
  keyConcurrency: KEY_CONCURRENCY,
};

/** An app with the per-key-limited queue beside 'bench'. */
export function openKeyedBenchApp(database: Parameters<typeof openBenchApp>[0]): Promise<BenchApp> {
  return openBenchApp(database, { queues: { [KEYED_QUEUE]: keyedQueue }, events: [KeyedNoopEvent] });
}

/**
 * Events per second of the per-key-limited queue and of the plain one, on one app: `count` events
 * dispatched (keyed: key = n mod 1,000, so every key has a backlog of count / 1,000), then processed
 * by measureProcessing's two loops. One warm-up pass of each, then the plain pass and the keyed pass,
 * so both see the same warmed-up app and machine.
 */
export async function measureKeyedProcessing(
  open: () => Promise<BenchApp>,
  count: number,
): Promise<{ plain: number; keyed: number }> {
  const app = await open();
  try {
    const pass = (keyed: boolean): Promise<number> =>
      measureProcessing(app, {
        count,
        dispatch: true,
        keepCompleted: false,
        event: (n) => (keyed ? new KeyedNoopEvent({ n }) : new NoopEvent({ n })),
        ...(keyed ? { queueName: KEYED_QUEUE } : {}),
      });
    await pass(false);
    await pass(true);
    const plain = await pass(false);
    return { plain, keyed: await pass(true) };
  } finally {
    await app.close();
  }
}
