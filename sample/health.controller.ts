import { Controller, Get, Inject, InternalServerErrorException } from '@nestjs/common';
import { type QueueHealth, type ResolvedWorkerConfig, WORKER_CONFIG, WorkerService } from '../lib/index.js';
import { errorMessage } from './error-message.js';

/** The seed's checkWorkerHealth() shape, plus the per-queue counts it is summed from. */
export interface WorkersHealth {
  active: number;
  failed: number;
  total: number;
  queues: QueueHealth[];
}

@Controller('health')
export class HealthController {
  constructor(
    private readonly workerService: WorkerService,
    @Inject(WORKER_CONFIG) private readonly config: ResolvedWorkerConfig,
  ) {}

  @Get('workers')
  async workers(): Promise<WorkersHealth> {
    try {
      const queues = withConfiguredQueues(await this.workerService.getHealth(), [...this.config.queues.keys()]);
      const sum = (field: 'active' | 'failed' | 'total'): number => queues.reduce((count, queue) => count + queue[field], 0);
      return { active: sum('active'), failed: sum('failed'), total: sum('total'), queues };
    } catch (error) {
      throw new InternalServerErrorException({ error: errorMessage(error) });
    }
  }
}

/**
 * getHealth() lists only queues that have rows; an empty configured queue is reported with zeros
 * so a dashboard sees it exists rather than wondering whether it is polled.
 */
function withConfiguredQueues(health: QueueHealth[], configured: string[]): QueueHealth[] {
  const byName = new Map(health.map((queue) => [queue.queueName, queue]));
  for (const queueName of configured) {
    if (!byName.has(queueName)) byName.set(queueName, { queueName, active: 0, failed: 0, total: 0 });
  }
  return [...byName.values()].sort((a, b) => a.queueName.localeCompare(b.queueName));
}
