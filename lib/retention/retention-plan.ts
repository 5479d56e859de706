import { createHash } from 'node:crypto';
import type { RetentionOptions } from '../interfaces/job-state.interface.js';
import type { PrunableTable, QueueRowScope } from '../storage/retention-store.js';

/** A process row whose heartbeat is older than this many leases is a process gone for good. */
export const STALE_PROCESS_LEASES = 3;
/** Bounded DELETEs one step makes per turn at most; what is left waits for the next turn. */
export const PRUNE_BATCHES_PER_STEP = 100;
/** The turn rows' names in the schedules table start with this. */
export const PRUNE_TURN_PREFIX = 'nestjs-workers:prune:';

/** What the pruner needs to know of the configuration: the rules, by queue and by event class. */
export interface RetentionRules {
  /** The queues this process knows (configured, or the queue of a registered event class). */
  queueNames: readonly string[];
  queueRules(queueName: string): { keepCompleted: RetentionOptions | false; keepFailed?: RetentionOptions };
  /** Registered event classes and their own keepCompleted (undefined: the queue's rule covers them). */
  events: readonly { name: string; queueName?: string; keepCompleted: RetentionOptions | false | undefined }[];
  throughputRetentionSeconds: number;
  leaseSeconds: number;
}

/** One step of a turn: delete rows older than an age, or beyond the newest maxCount of a scope. */
export type PruneStep =
  | { kind: 'older'; scope: QueueRowScope | PrunableTable; maxAgeMs: number }
  | { kind: 'beyondCount'; scope: QueueRowScope; maxCount: number };

/**
 * The steps of one prune turn, in order. For each known queue: the history rows of each event class
 * of that queue (or of no queue of its own) that has a keepCompleted of its own go by the class's
 * rule; the queue's other history rows by the queue's keepCompleted; the failed rows by keepFailed.
 * Then the throughput minutes older than throughputRetentionSeconds, the process rows silent for
 * STALE_PROCESS_LEASES leases and the throttle windows that have ended.
 *
 * A rule of `false` (keep nothing) or `{}` (keep everything) prunes nothing: rows that exist under
 * such a rule (kept under an earlier configuration, or by a runWorker() override) stay until deleted
 * by hand, since nothing said how long to keep them. Queues this process does not know are left to
 * the processes that know them (see RetentionPruner on turns).
 */
export function retentionPlan(rules: RetentionRules): PruneStep[] {
  const steps: PruneStep[] = [];
  for (const queueName of [...new Set(rules.queueNames)].sort()) {
    const { keepCompleted, keepFailed } = rules.queueRules(queueName);
    const ownRules = rules.events
      .filter((event) => event.keepCompleted !== undefined && (event.queueName ?? queueName) === queueName)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const event of ownRules) {
      steps.push(...retentionSteps({ table: 'history', queueName, events: { only: event.name } }, event.keepCompleted));
    }
    const except = ownRules.map((event) => event.name);
    steps.push(...retentionSteps({ table: 'history', queueName, events: { except } }, keepCompleted));
    steps.push(...retentionSteps({ table: 'failed', queueName }, keepFailed));
  }
  steps.push({ kind: 'older', scope: 'throughput', maxAgeMs: rules.throughputRetentionSeconds * 1000 });
  steps.push({ kind: 'older', scope: 'processes', maxAgeMs: STALE_PROCESS_LEASES * rules.leaseSeconds * 1000 });
  // Throttled dispatches' windows that have ended: an ended window and a missing one mean the same
  // (the next dispatch of the key opens a new one), so they go at once.
  steps.push({ kind: 'older', scope: 'throttles', maxAgeMs: 0 });
  return steps;
}

function retentionSteps(scope: QueueRowScope, retention: RetentionOptions | false | undefined): PruneStep[] {
  if (!retention) return [];
  const steps: PruneStep[] = [];
  if (retention.maxAgeSeconds !== undefined)
    steps.push({ kind: 'older', scope, maxAgeMs: retention.maxAgeSeconds * 1000 });
  if (retention.maxCount !== undefined) steps.push({ kind: 'beyondCount', scope, maxCount: retention.maxCount });
  return steps;
}

/**
 * The turn row of a plan: replicas with the same rules share one row, so one of them prunes per
 * turn; a replica with other rules (other queues, say a worker of queue B beside the workers of
 * queue A) has a row of its own and prunes its own queues, instead of waiting for turns that the
 * others might always win. Deletes are idempotent, so rules that overlap only cost a statement. The
 * prefix and the hash keep it apart from the recurring schedules' rows in the same table.
 */
export function turnName(steps: readonly PruneStep[]): string {
  return PRUNE_TURN_PREFIX + createHash('sha256').update(JSON.stringify(steps)).digest('hex').slice(0, 16);
}

/**
 * The turn that `nowMs` (the database's clock) falls in: turns are the multiples of the interval
 * on that clock, so every replica ticking once per interval reaches each one and the first to reach
 * it takes it.
 */
export function turnSlot(nowMs: number, intervalMs: number): number {
  const interval = Math.max(1, Math.round(intervalMs));
  return Math.floor(nowMs / interval) * interval;
}
