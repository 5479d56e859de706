/**
 * Test apps and helpers: WorkerModule booted on a test database (createTestApp, createPeerApp), a
 * recording logger, raw row reads and statements on any test database, sleep and waitFor.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { INestApplicationContext, ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import type { DataSource } from 'typeorm';
import {
  EventService,
  type ILoggerService,
  type TEventWorkerOptions,
  WORKER_DATA_SOURCE,
  WorkerModule,
  type WorkerModuleOptions,
  WorkerService,
} from '../../lib/index.js';
import { moduleDatabaseOptions, normalizeRow, resetWorkerTables, SQLITE, type TestDatabase } from './databases.js';

/** One runOnce pass of `queueName` with 3 attempts and no retry delay, unless overridden. */
export function runOncePass(queueName: string, overrides: Partial<TEventWorkerOptions> = {}): TEventWorkerOptions {
  return { queueName, retries: 3, runAfterSeconds: 0, runOnce: true, ...overrides };
}

/** A fresh SQLite file in its own temp folder, removed by cleanup(). */
export function tempDatabase(): { file: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'nestjs-workers-'));
  return { file: join(dir, 'queue.sqlite'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestApp {
  app: INestApplicationContext;
  workers: WorkerService;
  events: EventService;
  dataSource: DataSource;
  file: string;
  close(): Promise<void>;
}

/**
 * Boots WorkerModule (polling off unless asked) on `on`: a temp SQLite file by default, or empty queue
 * tables on a server database; returns its services.
 */
export async function createTestApp(
  options: WorkerModuleOptions = {},
  metadata: ModuleMetadata = {},
  on: TestDatabase = SQLITE,
  { emptyTables = true }: { emptyTables?: boolean } = {},
): Promise<TestApp> {
  const database = tempDatabase();
  const databaseOptions = {
    ...(await moduleDatabaseOptions(on, database.file)),
    ...options.database,
  } as WorkerModuleOptions['database'];
  const moduleRef = await Test.createTestingModule({
    ...metadata,
    imports: [
      WorkerModule.forRoot({ autoStart: false, ...options, database: databaseOptions }),
      ...(metadata.imports ?? []),
    ],
  }).compile();
  const app = await moduleRef.init();
  const dataSource = app.get<DataSource>(WORKER_DATA_SOURCE);
  if (emptyTables) await resetWorkerTables(dataSource);
  return {
    app,
    workers: app.get(WorkerService),
    events: app.get(EventService),
    dataSource,
    file: database.file,
    close: async () => {
      await app.close();
      database.cleanup();
    },
  };
}

/**
 * Another application instance on the database of `t` (the same SQLite file, or the same server
 * database): what a second replica or worker process of the app would be. It leaves the tables as
 * they are.
 */
export function createPeerApp(
  t: TestApp,
  options: WorkerModuleOptions,
  on: TestDatabase,
  metadata: ModuleMetadata = {},
): Promise<TestApp> {
  const database = on.type === 'better-sqlite3' ? { ...options.database, database: t.file } : options.database;
  return createTestApp({ ...options, database } as WorkerModuleOptions, metadata, on, { emptyTables: false });
}

/** A logger that keeps every line, for assertions on what the workers log. */
export class RecordingLogger implements ILoggerService {
  readonly lines: { level: string; message: string }[] = [];
  log(message: string): void {
    this.lines.push({ level: 'log', message });
  }
  error(message: string): void {
    this.lines.push({ level: 'error', message });
  }
  warn(message: string): void {
    this.lines.push({ level: 'warn', message });
  }
  debug(message: string): void {
    this.lines.push({ level: 'debug', message });
  }
  messages(level?: string): string[] {
    return this.lines.filter((line) => !level || line.level === level).map((line) => line.message);
  }
}

/** Runs `text` with `?` placeholders on any of the test databases (PostgreSQL spells them $1, $2, …). */
export function execute(dataSource: DataSource, text: string, parameters: unknown[] = []): Promise<unknown> {
  let position = 0;
  const spelled = dataSource.options.type === 'postgres' ? text.replace(/\?/g, () => `$${++position}`) : text;
  return dataSource.query(spelled, parameters);
}

export async function pendingRows(dataSource: DataSource): Promise<Record<string, unknown>[]> {
  return ((await dataSource.query('SELECT * FROM nestjs_workers ORDER BY id')) as Record<string, unknown>[]).map(
    normalizeRow,
  );
}

export async function failedRows(dataSource: DataSource): Promise<Record<string, unknown>[]> {
  return ((await dataSource.query('SELECT * FROM nestjs_failed_workers ORDER BY id')) as Record<string, unknown>[]).map(
    normalizeRow,
  );
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await sleep(20);
  }
}
