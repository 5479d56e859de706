import 'reflect-metadata';
import { Module, type DynamicModule } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import {
  BaseEvent,
  EventService,
  QueueEvent,
  WORKER_DATA_SOURCE,
  WorkerModule,
  type WorkerModuleOptions,
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
 * second (and, on PostgreSQL, is woken by NOTIFY).
 */
export async function openBenchApp(
  database: WorkerModuleOptions['database'],
  { autoStart = false } = {},
): Promise<BenchApp> {
  const app = await NestFactory.createApplicationContext(
    BenchModule.register({
      database: { ...database, synchronize: true } as WorkerModuleOptions['database'],
      events: [NoopEvent],
      autoStart,
      logger: quiet,
      queues: { bench: { retries: 1, pollIntervalMs: 1000, concurrency: 50, batchSize: 1000 } },
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
