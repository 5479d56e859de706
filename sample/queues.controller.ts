import {
  BadRequestException,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Param,
  Post,
  UseGuards,
} from '@nestjs/common';
import { InvalidWorkerOptionsError, UnknownQueueError, WorkerFlowService } from '../lib/index.js';
import { AdminTokenGuard } from './admin-token.guard.js';

export interface QueueState {
  queueName: string;
  paused: boolean;
}

/** Operators pause a queue for every replica (a partner is down, a deploy migrates data) and resume it. */
@Controller('queues')
@UseGuards(AdminTokenGuard)
export class QueuesController {
  constructor(private readonly flow: WorkerFlowService) {}

  /** POST /queues/:name/pause — no replica starts another event of the queue; running ones finish. */
  @Post(':name/pause')
  @HttpCode(HttpStatus.OK)
  async pause(@Param('name') queueName: string): Promise<QueueState> {
    await this.known(() => this.flow.pauseQueue(queueName));
    return { queueName, paused: true };
  }

  /** POST /queues/:name/resume — the waiting events run from the next poll (at once on PostgreSQL). */
  @Post(':name/resume')
  @HttpCode(HttpStatus.OK)
  async resume(@Param('name') queueName: string): Promise<QueueState> {
    await this.known(() => this.flow.resumeQueue(queueName));
    return { queueName, paused: false };
  }

  /** GET /queues/paused — the paused queues and since when. */
  @Get('paused')
  paused(): Promise<{ queueName: string; pausedAt: Date }[]> {
    return this.flow.pausedQueues();
  }

  private async known(action: () => Promise<void>): Promise<void> {
    try {
      await action();
    } catch (error) {
      if (error instanceof UnknownQueueError) throw new NotFoundException({ error: error.message });
      if (error instanceof InvalidWorkerOptionsError) throw new BadRequestException({ error: error.message });
      throw error;
    }
  }
}
