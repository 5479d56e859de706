import { Controller, Get, InternalServerErrorException } from '@nestjs/common';
import { type QueueHealth, WorkerService } from '../lib/index.js';
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
  constructor(private readonly workerService: WorkerService) {}

  @Get('workers')
  async workers(): Promise<WorkersHealth> {
    try {
      // Every polled queue, empty ones included, and any other queue with rows.
      const queues = await this.workerService.getHealth();
      const sum = (field: 'active' | 'failed' | 'total'): number => queues.reduce((count, queue) => count + queue[field], 0);
      return { active: sum('active'), failed: sum('failed'), total: sum('total'), queues };
    } catch (error) {
      throw new InternalServerErrorException({ error: errorMessage(error) });
    }
  }
}
