import {
  type BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
} from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { keepCompletedOf } from '../common/worker-options.validation.js';
import { EventService } from '../dispatch/event.service.js';
import { describeError } from '../errors/describe-error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import { RetentionStore } from '../storage/retention-store.js';
import { knownQueueNames, type ResolvedWorkerConfig } from '../worker.config.js';
import { WORKER_CONFIG, WORKER_DATA_SOURCE } from '../worker.constants.js';
import { PRUNE_BATCH_SIZE } from '../worker.defaults.js';
import { retentionMessages } from '../worker.messages.js';
import { WorkerStartup } from '../worker-startup.js';
import { PRUNE_BATCHES_PER_STEP, type PruneStep, retentionPlan, turnName, turnSlot } from './retention-plan.js';

/** What one prune turn deleted. */
export interface PruneReport {
  /** Rows deleted from the history of completed and cancelled events. */
  history: number;
  /** Rows deleted from the failed store. */
  failed: number;
  /** Per-minute throughput rows deleted. */
  throughput: number;
  /** Rows of worker processes gone for good deleted. */
  processes: number;
  /** Throttled dispatches' windows that had ended, deleted. */
  throttles: number;
  /** DELETE statements run, each of at most PRUNE_BATCH_SIZE rows. */
  statements: number;
  /**
   * False when the turn stopped before the end: the application is shutting down, or a step reached
   * PRUNE_BATCHES_PER_STEP batches (the rest is deleted by the next turns).
   */
  complete: boolean;
}

/**
 * Prunes what the retention options say to drop: history rows past their queue's or event class's
 * keepCompleted, failed rows past keepFailed, throughput minutes past throughputRetentionSeconds,
 * the rows of processes silent for a few leases and throttle windows that have ended (see retentionPlan).
 *
 * **One replica per turn.** With autoStart, every replica ticks every pruneIntervalSeconds; the
 * turns are the multiples of that interval on the database's clock, and a replica prunes a turn only
 * when its one conditional UPDATE moved the turn row's last_slot_at (a row of the schedules table,
 * as the recurring events' slots) forward to it; that UPDATE commits before any DELETE. A replica that
 * dies mid-turn holds nothing (no lock, no lease, no open transaction): the DELETEs it committed
 * stay done, the rest is found again by the next turn, which another replica takes. Deletes are
 * idempotent, so even two replicas pruning at once (pruneNow() beside a turn) would only repeat work.
 *
 * **Never blocks claims.** Each DELETE is its own statement of at most PRUNE_BATCH_SIZE rows picked
 * through an index, and none touches the pending table. Between batches the event loop runs (claims
 * and completions of this process go first); a turn stops after PRUNE_BATCHES_PER_STEP batches of a
 * step. Errors are logged, never thrown from the timer. On shutdown the timer stops and a turn under
 * way ends after its current statement, before the DataSource closes.
 *
 * Injectable (exported by the module) for its pruneNow(): operators and tests prune at once.
 */
@Injectable()
export class RetentionPruner implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger: ILoggerService;
  private readonly store: RetentionStore;
  private timer?: NodeJS.Timeout;
  private stopping = false;
  /** The turn under way (a tick's or pruneNow()'s): turns of one process never overlap. */
  private turn?: Promise<PruneReport | undefined>;

  constructor(
    @Inject(WORKER_CONFIG) private readonly config: ResolvedWorkerConfig,
    @Inject(WORKER_DATA_SOURCE) dataSource: DataSource,
    private readonly eventService: EventService,
    private readonly startup: WorkerStartup,
  ) {
    this.logger = config.logger ?? new Logger(RetentionPruner.name);
    this.store = new RetentionStore(dataSource);
  }

  onApplicationBootstrap(): void {
    if (!this.config.autoStart) return;
    // A later startup step that fails stops the timer again.
    this.startup.opened(() => this.beforeApplicationShutdown());
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
  }

  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.turn?.catch(() => undefined);
  }

  /**
   * One tick of the timer: takes the current turn if no replica (this one included) took it yet,
   * and prunes. Resolves to what it deleted, or undefined when the turn was taken already, a turn
   * of this process is still under way, or it failed (logged). Public for tests.
   */
  async tick(): Promise<PruneReport | undefined> {
    if (this.stopping || this.turn) return undefined;
    const run = this.takeTurnAndPrune();
    this.turn = run;
    try {
      return await run;
    } catch (error) {
      this.logger.error(retentionMessages.failed(describeError(error)));
      return undefined;
    } finally {
      this.turn = undefined;
    }
  }

  /**
   * Prunes now, without waiting for a turn (after a turn of this process under way, if any); errors
   * are thrown to the caller. For operators (after lowering a retention, say) and tests.
   */
  async pruneNow(): Promise<PruneReport> {
    while (this.turn) await this.turn.catch(() => undefined);
    const run = this.prune(this.plan());
    this.turn = run;
    try {
      return await run;
    } finally {
      if (this.turn === run) this.turn = undefined;
    }
  }

  private get intervalMs(): number {
    return this.config.pruneIntervalSeconds * 1000;
  }

  private async takeTurnAndPrune(): Promise<PruneReport | undefined> {
    const steps = this.plan();
    const name = turnName(steps);
    const slotAt = turnSlot(await this.store.databaseNow(), this.intervalMs);
    if (!(await this.store.takeTurn(name, slotAt))) return undefined;
    const report = await this.prune(steps);
    this.logger.debug?.(retentionMessages.turn(name, slotAt, report));
    return report;
  }

  /** The rules as the configuration and the registered event classes give them now. */
  private plan(): PruneStep[] {
    return retentionPlan({
      queueNames: knownQueueNames(this.config, this.eventService),
      queueRules: (queueName) => this.config.queueOptions(queueName),
      events: this.eventService.getRegisteredEvents().map(({ name, queueName }) => ({
        name,
        queueName,
        keepCompleted: keepCompletedOf(
          `keepCompleted of ${name}`,
          this.eventService.getEventOptions(name)?.keepCompleted,
        ),
      })),
      throughputRetentionSeconds: this.config.throughputRetentionSeconds,
      leaseSeconds: this.config.leaseSeconds,
    });
  }

  private async prune(steps: PruneStep[]): Promise<PruneReport> {
    const report: PruneReport = {
      history: 0,
      failed: 0,
      throughput: 0,
      processes: 0,
      throttles: 0,
      statements: 0,
      complete: true,
    };
    for (const step of steps) {
      if (this.stopping) {
        report.complete = false;
        break;
      }
      const table = typeof step.scope === 'string' ? step.scope : step.scope.table;
      let deleteBatch: () => Promise<number>;
      if (step.kind === 'older') {
        deleteBatch = () => this.store.deleteOlderThan(step.scope, step.maxAgeMs, PRUNE_BATCH_SIZE);
      } else {
        // Read once: rows finished after it are newer than every row this step deletes.
        const cutoff = await this.store.cutoff(step.scope, step.maxCount);
        if (!cutoff) continue;
        deleteBatch = () => this.store.deleteUpTo(step.scope, cutoff, PRUNE_BATCH_SIZE);
      }
      for (let batch = 0; ; batch++) {
        if (this.stopping || batch === PRUNE_BATCHES_PER_STEP) {
          report.complete = false;
          break;
        }
        const deleted = await deleteBatch();
        report.statements++;
        report[table] += deleted;
        if (deleted < PRUNE_BATCH_SIZE) break;
        // better-sqlite3 runs statements synchronously: let this process's claims and completions in.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return report;
  }
}
