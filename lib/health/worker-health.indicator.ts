import { Inject, Injectable, Optional } from '@nestjs/common';
import { HealthIndicatorService } from '@nestjs/terminus';
import { describeError } from '../errors/describe-error.js';
import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import {
  assertInteger,
  assertKnownKeys,
  assertNumber,
  assertPlainObject,
} from '../common/worker-options.validation.js';
import { WorkerService } from '../processing/worker.service.js';
import { oldestDueTooOld, statisticsUnavailable, tooManyFailed } from '../worker.messages.js';

/** When the workers count as unhealthy. Thresholds left out are not checked. */
export interface WorkerHealthThresholds {
  /**
   * Down when an event of a queue has been due (waiting for a worker) longer than this. A paused queue
   * is not checked: its events wait because an operator said so (WorkerFlowService.pauseQueue).
   */
  maxOldestDueAgeSeconds?: number;
  /** Down when a queue has more events in the failed store than this. */
  maxFailed?: number;
  /** Queues to report and check. Default: every known queue and every queue with rows. */
  queues?: string[];
}

/** DI token of the default thresholds given to WorkerHealthModule.register(). */
export const WORKER_HEALTH_THRESHOLDS = 'NESTJS_WORKERS_HEALTH_THRESHOLDS';

const THRESHOLD_KEYS = ['maxOldestDueAgeSeconds', 'maxFailed', 'queues'] as const;

export function validateHealthThresholds(thresholds: WorkerHealthThresholds): WorkerHealthThresholds {
  const raw: unknown = thresholds;
  assertPlainObject('health thresholds', raw);
  assertKnownKeys('', raw, THRESHOLD_KEYS);
  if (thresholds.maxOldestDueAgeSeconds !== undefined)
    assertNumber('maxOldestDueAgeSeconds', thresholds.maxOldestDueAgeSeconds, 0);
  if (thresholds.maxFailed !== undefined) assertInteger('maxFailed', thresholds.maxFailed, 0);
  return thresholds;
}

/**
 * A @nestjs/terminus health indicator: each queue's statistics (one query), and `down` when a
 * threshold is passed or the statistics cannot be read. Also carries larascript-events' health summary
 * (active, failed, total).
 */
@Injectable()
export class WorkerHealthIndicator {
  private readonly defaults: WorkerHealthThresholds;

  constructor(
    private readonly workerService: WorkerService,
    private readonly healthIndicatorService: HealthIndicatorService,
    @Optional() @Inject(WORKER_HEALTH_THRESHOLDS) defaults?: WorkerHealthThresholds,
  ) {
    this.defaults = defaults ?? {};
  }

  async isHealthy<const Key extends string>(key: Key, thresholds: WorkerHealthThresholds = {}) {
    const indicator = this.healthIndicatorService.check(key);
    const { maxOldestDueAgeSeconds, maxFailed, queues } = { ...this.defaults, ...validateHealthThresholds(thresholds) };
    let statistics: QueueStatistics[];
    try {
      statistics = await this.workerService.getQueueStatistics(queues);
    } catch (error) {
      return indicator.down({ message: statisticsUnavailable(describeError(error)) });
    }
    const problems: string[] = [];
    for (const queue of statistics) {
      if (
        maxOldestDueAgeSeconds !== undefined &&
        !queue.paused &&
        queue.oldestDueAgeMs !== null &&
        queue.oldestDueAgeMs > maxOldestDueAgeSeconds * 1000
      ) {
        problems.push(
          oldestDueTooOld(queue.queueName, Math.round(queue.oldestDueAgeMs / 1000), maxOldestDueAgeSeconds),
        );
      }
      if (maxFailed !== undefined && queue.failed > maxFailed) {
        problems.push(tooManyFailed(queue.queueName, queue.failed, maxFailed));
      }
    }
    const active = statistics.reduce((sum, queue) => sum + queue.pending, 0);
    const failed = statistics.reduce((sum, queue) => sum + queue.failed, 0);
    const data = { active, failed, total: active + failed, queues: statistics };
    return problems.length > 0 ? indicator.down({ ...data, problems }) : indicator.up(data);
  }
}
