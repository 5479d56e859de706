// Run in the app without better-sqlite3, with pg installed: a PostgreSQL-only app, which installs no
// native module, boots WorkerModule.forRoot() on the server given by WORKERS_TEST_POSTGRES_URL (a
// database of its own, created and dropped here; the tables come from the package's migrations),
// dispatches an event and sees it run.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BaseEvent, EventService, QueueEvent, WorkerModule } from 'nestjs-workers';
import pg from 'pg';

const serverUrl = new URL(process.env.WORKERS_TEST_POSTGRES_URL);
const databaseName = `${process.env.WORKERS_TEST_DATABASE_PREFIX ?? 'nestjs_workers'}_consumer_app`;
const url = Object.assign(new URL(serverUrl), { pathname: `/${databaseName}` }).toString();

async function admin(sql) {
  const client = new pg.Client({ connectionString: serverUrl.toString() });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const ran = [];
class PostgresGreetingEvent extends BaseEvent {
  async execute() {
    ran.push(this.getPayload().name);
  }
}
QueueEvent('consumer-queue')(PostgresGreetingEvent);

class AppModule {}
Module({ imports: [WorkerModule.forRoot({ database: { type: 'postgres', url, migrationsRun: true } })] })(AppModule);

await admin(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
await admin(`CREATE DATABASE "${databaseName}"`);
try {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  const startedAt = Date.now();
  await app.get(EventService).dispatch(new PostgresGreetingEvent({ name: 'postgres' }));
  while (ran.length === 0 && Date.now() - startedAt < 15_000) await new Promise((resolve) => setTimeout(resolve, 50));
  await app.close();
  if (ran.join() !== 'postgres') throw new Error(`expected one run of the event, got ${JSON.stringify(ran)}`);
  console.log(`PostgreSQL app without better-sqlite3: the dispatched event ran in ${Date.now() - startedAt} ms`);
} finally {
  await admin(`DROP DATABASE IF EXISTS "${databaseName}" WITH (FORCE)`);
}
