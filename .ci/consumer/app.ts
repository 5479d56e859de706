/*
 * The consumer-app check's application (.ci/consumer-apps.sh): the same source is compiled as an ES
 * module (esm/) and as CommonJS (cjs/), against the packed tarball installed from outside the repo.
 * It boots WorkerModule.forRoot() on the embedded SQLite default, dispatches one event, waits until
 * a worker has run it and exits 0; anything else exits 1.
 */
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BaseEvent, EventService, QueueEvent, WorkerModule } from 'nestjs-workers';
import { WorkerMetricsModule } from 'nestjs-workers/prometheus';
import { WorkerHealthModule } from 'nestjs-workers/terminus';
import { drain } from 'nestjs-workers/testing';

const ran: string[] = [];

@QueueEvent('consumer-queue')
export class GreetingEvent extends BaseEvent<{ name: string }> {
  async execute(): Promise<void> {
    ran.push(this.getPayload().name);
  }
}

@Module({ imports: [WorkerModule.forRoot()] })
class AppModule {}

async function main(): Promise<void> {
  const moduleSystem = typeof require === 'function' && typeof module === 'object' ? 'commonjs' : 'esm';
  if (moduleSystem !== process.env.EXPECTED_MODULE_SYSTEM) {
    throw new Error(`compiled as ${moduleSystem}, expected ${process.env.EXPECTED_MODULE_SYSTEM}`);
  }
  // The subpath entries resolve (types at compile time, modules at run time) in this module system too.
  for (const [entry, value] of Object.entries({ WorkerHealthModule, WorkerMetricsModule, drain })) {
    if (typeof value !== 'function') throw new Error(`${entry} is not a function: ${typeof value}`);
  }
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  const startedAt = Date.now();
  await app.get(EventService).dispatch(new GreetingEvent({ name: moduleSystem }));
  while (ran.length === 0 && Date.now() - startedAt < 15_000) await new Promise((resolve) => setTimeout(resolve, 50));
  await app.close();
  if (ran.join() !== moduleSystem) throw new Error(`expected one run of the event, got ${JSON.stringify(ran)}`);
  console.log(`${moduleSystem} app: WorkerModule.forRoot() ran the dispatched event in ${Date.now() - startedAt} ms`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
