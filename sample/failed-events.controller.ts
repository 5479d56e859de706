import {
  type ArgumentsHost,
  Body,
  Catch,
  Controller,
  Delete,
  type ExceptionFilter,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  Post,
  Query,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import {
  FailedWorkerNotFoundError,
  type FailedWorkerPage,
  type FailedWorkerRecord,
  FailedWorkerService,
  InvalidWorkerOptionsError,
} from '../lib/index.js';
import { AdminTokenGuard } from './admin-token.guard.js';

/** The part of Express's response the filter uses. */
interface HttpResponse {
  status(code: number): { json(body: unknown): void };
}

/** The library's typed errors as HTTP answers: an unknown id is a 404, bad input a 400. */
@Catch(FailedWorkerNotFoundError, InvalidWorkerOptionsError)
class FailedEventErrorsFilter implements ExceptionFilter {
  catch(error: FailedWorkerNotFoundError | InvalidWorkerOptionsError, host: ArgumentsHost): void {
    const status = error instanceof FailedWorkerNotFoundError ? HttpStatus.NOT_FOUND : HttpStatus.BAD_REQUEST;
    host.switchToHttp().getResponse<HttpResponse>().status(status).json({ error: error.message });
  }
}

/** An optional numeric query parameter; anything that is not a number reaches the library, which names it. */
function numberParam(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

/**
 * Operators' view of the failed store: list, show, retry one or all, delete, purge. Guarded as a
 * whole: the reads show payloads and stack traces, the writes re-run or destroy work.
 */
@Controller('failed-events')
@UseGuards(AdminTokenGuard)
@UseFilters(FailedEventErrorsFilter)
export class FailedEventsController {
  constructor(private readonly failedEvents: FailedWorkerService) {}

  /** GET /failed-events?queueName=&eventName=&page=&pageSize= — newest first. */
  @Get()
  list(
    @Query('queueName') queueName?: string,
    @Query('eventName') eventName?: string,
    @Query('page') page?: string,
    @Query('pageSize') pageSize?: string,
  ): Promise<FailedWorkerPage> {
    return this.failedEvents.list({ queueName, eventName, page: numberParam(page), pageSize: numberParam(pageSize) });
  }

  @Get(':id')
  show(@Param('id') id: string): Promise<FailedWorkerRecord> {
    return this.failedEvents.get(id);
  }

  /** Retries every failed event matching the body's queueName / eventName (all when empty). */
  @Post('retry')
  @HttpCode(HttpStatus.OK)
  async retryAll(@Body() body: { queueName?: string; eventName?: string } | undefined): Promise<{ retried: number }> {
    return { retried: await this.failedEvents.retryAll({ queueName: body?.queueName, eventName: body?.eventName }) };
  }

  @Post(':id/retry')
  @HttpCode(HttpStatus.OK)
  async retry(@Param('id') id: string): Promise<{ retried: number }> {
    await this.failedEvents.retry(id);
    return { retried: 1 };
  }

  /** DELETE /failed-events?olderThan=2026-11-01T00:00:00Z — purges what failed before that instant. */
  @Delete()
  async purge(@Query('olderThan') olderThan?: string): Promise<{ deleted: number }> {
    return { deleted: await this.failedEvents.purge(new Date(olderThan ?? 'missing')) };
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  async remove(@Param('id') id: string): Promise<void> {
    await this.failedEvents.delete(id);
  }
}
