import type { INestApplicationContext } from '@nestjs/common';
import { EventService } from '../dispatch/event.service.js';
import type { RunWorkerResult } from '../interfaces/worker-options.interface.js';
import { WorkerService } from '../processing/worker.service.js';
import { knownQueueNames, type ResolvedWorkerConfig } from '../worker.config.js';
import { WORKER_CONFIG } from '../worker.constants.js';
import { drainNeedsWorkerModule } from '../worker.messages.js';

interface AppWorkers {
  workers: WorkerService;
  config: ResolvedWorkerConfig;
}

function workersOf(app: INestApplicationContext, caller: string): AppWorkers {
  try {
    return { workers: app.get(WorkerService), config: app.get<ResolvedWorkerConfig>(WORKER_CONFIG) };
  } catch (error) {
    throw new Error(drainNeedsWorkerModule(caller), { cause: error });
  }
}

function did(result: RunWorkerResult): boolean {
  return result.processed + result.failed + result.retried + result.cancelled > 0;
}

function add(total: RunWorkerResult, result: RunWorkerResult): void {
  total.processed += result.processed;
  total.failed += result.failed;
  total.retried += result.retried;
  total.cancelled += result.cancelled;
}

function nothingRun(queueName: string): RunWorkerResult {
  return { queueName, processed: 0, failed: 0, retried: 0, cancelled: 0 };
}

async function drainQueue({ workers, config }: AppWorkers, queueName: string): Promise<RunWorkerResult> {
  const { retries, runAfterSeconds, concurrency } = config.queueOptions(queueName);
  const total = nothingRun(queueName);
  let result: RunWorkerResult;
  do {
    result = await workers.runWorker({ queueName, retries, runAfterSeconds, concurrency });
    add(total, result);
  } while (did(result));
  return total;
}

/**
 * Runs the events of `queueName` that are due, in this process, until none is due (like Oban's
 * drain), with the queue's configured options (retries, runAfterSeconds, concurrency; @QueueEvent()
 * options still win), and resolves to what ran, summed: `{ queueName, processed, failed, retried, cancelled }`.
 *
 * Failed attempts retried with `runAfterSeconds: 0` are due at once and run in the same drain until
 * they succeed or their attempts are used up (then they are in the failed store). A retry delayed by
 * `runAfterSeconds > 0` is not due yet: it is counted in `retried` and stays pending. Events the
 * drained events dispatch to the same queue run too.
 *
 * Meant for applications started with `autoStart: false`; under polling, events the pollers take
 * are not counted here.
 */
export async function drain(app: INestApplicationContext, queueName: string): Promise<RunWorkerResult> {
  return drainQueue(workersOf(app, 'drain()'), queueName);
}

/**
 * drain() of every queue the application polls (the queues of the module's `queues` option and of
 * registered event classes), repeated until a round over all of them runs nothing, so events that
 * dispatch to another queue are run too. Resolves to one summed result per queue, in the order of
 * the queues.
 */
export async function drainAll(app: INestApplicationContext): Promise<RunWorkerResult[]> {
  const appWorkers = workersOf(app, 'drainAll()');
  const queueNames = knownQueueNames(appWorkers.config, app.get(EventService));
  const totals = queueNames.map(nothingRun);
  let busy: boolean;
  do {
    busy = false;
    for (const total of totals) {
      const result = await drainQueue(appWorkers, total.queueName);
      add(total, result);
      busy ||= did(result);
    }
  } while (busy);
  return totals;
}
