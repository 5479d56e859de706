import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import {
  BaseEvent,
  type EventClass,
  EventService,
  type IBaseEvent,
  QueueEvent,
  WORKER_DATA_SOURCE,
  WorkerModule,
  type WorkerModuleOptions,
  type WorkerQueueOptions,
  WorkerService,
} from '../lib/index.js';

/** When each latency event (negative n) started, by n (performance.now()). */
export const starts = new Map<number, number>();

@QueueEvent('bench')
export class NoopEvent extends BaseEvent<{ n: number }> {
  async execute(): Promise<void> {
    const { n } = this.getPayload();
    if (n < 0) starts.set(n, performance.now());
  }
}

export interface BenchApp {
  events: EventService;
  workers: WorkerService;
  /** Empties the queue tables (pending, history, throughput). */
  clear(): Promise<void>;
  /** Drops a secondary index of the history table in this (scratch) database: what it costs, measured. */
  dropHistoryIndex(name: string): Promise<void>;
  close(): Promise<void>;
}

const quiet = {
  log: () => undefined,
  warn: () => undefined,
  error: (message: string) => process.stderr.write(`nestjs-workers: ${message}\n`),
};

@Module({})
class BenchModule {
  static register(options: WorkerModuleOptions): DynamicModule {
    return { module: BenchModule, imports: [WorkerModule.forRoot(options)] };
  }
}

/**
 * The queue as an application uses it: a Nest application context with WorkerModule. Tables by
 * synchronize (the bench starts from empty databases). With autoStart the 'bench' queue polls once a
 * second (and, on PostgreSQL, is woken by NOTIFY). `queues` and `events` add queues and event classes
 * of other rows (keyed-bench.ts) to the 'bench' queue and NoopEvent, which stay as they are.
 */
export async function openBenchApp(
  database: WorkerModuleOptions['database'],
  {
    autoStart = false,
    queues = {},
    events = [],
  }: { autoStart?: boolean; queues?: Record<string, WorkerQueueOptions>; events?: EventClass[] } = {},
): Promise<BenchApp> {
  const app = await NestFactory.createApplicationContext(
    BenchModule.register({
      database: { ...database, synchronize: true } as WorkerModuleOptions['database'],
      events: [NoopEvent, ...events],
      autoStart,
      logger: quiet,
      queues: { bench: { retries: 1, pollIntervalMs: 1000, concurrency: 50, batchSize: 1000 }, ...queues },
    }),
    { logger: false },
  );
  const dataSource = app.get<DataSource>(WORKER_DATA_SOURCE);
  return {
    events: app.get(EventService),
    workers: app.get(WorkerService),
    clear: async () => {
      for (const table of ['nestjs_workers', 'nestjs_workers_history', 'nestjs_workers_throughput'])
        await dataSource.query(`DELETE FROM ${table}`);
    },
    dropHistoryIndex: async (name) => {
      const type = dataSource.options.type;
      await dataSource.query(
        type === 'mysql' || type === 'mariadb'
          ? `DROP INDEX \`${name}\` ON nestjs_workers_history`
          : `DROP INDEX "${name}"`,
      );
    },
    close: () => app.close(),
  };
}

/**
 * Processing `count` no-op events (dispatched first when `dispatch`) as WorkerModule's options would
 * run them: two runWorker loops on the queue in one process (SKIP LOCKED keeps them apart), so one
 * claims while the other runs its batch (graphile-worker runs 10 jobs at once, pg-boss 4 fetch
 * loops). `keepCompleted` keeps each completed event in the history; when false the option is left
 * out, so an earlier release's app (processing-ab.ts), which does not know it, runs the same loop.
 * `event` makes the app's own NoopEvent (the app may be another build's); `queueName` (default
 * 'bench') is the queue its events go to.
 */
export async function measureProcessing(
  app: BenchApp,
  {
    count,
    dispatch,
    keepCompleted,
    event,
    queueName = 'bench',
  }: { count: number; dispatch: boolean; keepCompleted: boolean; event: (n: number) => IBaseEvent; queueName?: string },
): Promise<number> {
  if (dispatch) await app.events.dispatchMany(Array.from({ length: count }, (_, n) => event(n)));
  const started = performance.now();
  let processed = 0;
  const lane = async (): Promise<void> => {
    while (processed < count) {
      const result = await app.workers.runWorker({
        queueName,
        retries: 1,
        runAfterSeconds: 0,
        concurrency: 100,
        batchSize: 2000,
        ...(keepCompleted ? { keepCompleted } : {}),
      });
      processed += result.processed;
      // The other lane holds the last rows: wait for it rather than spin.
      if (result.processed === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };
  await Promise.all([lane(), lane()]);
  return Math.round((count / (performance.now() - started)) * 1000);
}
