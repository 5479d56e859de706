import {
  BadRequestException,
  Body,
  Controller,
  HttpCode,
  HttpStatus,
  InternalServerErrorException,
  Post,
  UseGuards,
} from '@nestjs/common';
import { InvalidWorkerOptionsError, type RunWorkerResult, WorkerService } from '../lib/index.js';
import { AdminTokenGuard } from './admin-token.guard.js';
import { errorMessage } from './error-message.js';

export interface RunWorkerBody {
  queueName?: string;
  retries?: number;
  runAfterSeconds?: number;
}

export interface RunWorkerResponse {
  success: true;
  message: string;
  result: RunWorkerResult;
}

/** The seed's "Manual worker trigger endpoint", for operators only. */
@Controller('workers')
@UseGuards(AdminTokenGuard)
export class WorkersController {
  constructor(private readonly workerService: WorkerService) {}

  @Post('run')
  @HttpCode(HttpStatus.OK)
  async run(@Body() body: RunWorkerBody | undefined): Promise<RunWorkerResponse> {
    // `??`, not the seed's `||`: an explicit `retries: 0` is a mistake to report, not a request for 3.
    const { queueName = 'default', retries = 3, runAfterSeconds = 0 } = body ?? {};
    try {
      // runOnce: an HTTP request must return even while new events keep arriving.
      const result = await this.workerService.runWorker({ queueName, retries, runAfterSeconds, runOnce: true });
      return { success: true, message: 'Worker started', result };
    } catch (error) {
      if (error instanceof InvalidWorkerOptionsError) throw new BadRequestException({ error: error.message });
      throw new InternalServerErrorException({ error: errorMessage(error) });
    }
  }
}
