import {
  type ArgumentsHost,
  Body,
  Catch,
  Controller,
  type ExceptionFilter,
  Get,
  HttpStatus,
  NotFoundException,
  Param,
  Post,
  Query,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import {
  EventService,
  InvalidWorkerOptionsError,
  type JobPage,
  type JobRecord,
  type JobState,
  type PayloadFilterValue,
  type WorkerProcessInfo,
  WorkerJobsService,
} from '../lib/index.js';
import { AdminTokenGuard } from './admin-token.guard.js';
import { ReportExportEvent } from './report-export.event.js';

interface HttpResponse {
  status(code: number): { json(body: unknown): void };
}

/** Bad ids, filters and pages are the library's InvalidWorkerOptionsError: a 400 naming the field. */
@Catch(InvalidWorkerOptionsError)
class JobQueryErrorsFilter implements ExceptionFilter {
  catch(error: InvalidWorkerOptionsError, host: ArgumentsHost): void {
    host.switchToHttp().getResponse<HttpResponse>().status(HttpStatus.BAD_REQUEST).json({ error: error.message });
  }
}

function numberParam(value: string | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

/** `payload={"userId":"123"}` in the query string; anything else reaches the library, which names it. */
function payloadParam(value: string | undefined): Record<string, PayloadFilterValue> | undefined {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) as Record<string, PayloadFilterValue>;
  } catch {
    throw new InvalidWorkerOptionsError('payload', 'must be a JSON object of top-level fields');
  }
}

/**
 * What became of an event: its state, progress and result by id, a filtered listing, and the worker
 * processes alive. Guarded: payloads and errors are for operators.
 */
@Controller()
@UseGuards(AdminTokenGuard)
@UseFilters(JobQueryErrorsFilter)
export class JobsController {
  constructor(
    private readonly jobs: WorkerJobsService,
    private readonly events: EventService,
  ) {}

  /** Queues a month's export (report-queue keeps its completed events for a day). */
  @Post('reports')
  async export(@Body() body: { month?: string; rows?: number } | undefined): Promise<{ id: string | undefined }> {
    const month = body?.month ?? new Date().toISOString().slice(0, 7);
    return { id: await this.events.dispatch(new ReportExportEvent({ month, rows: body?.rows })) };
  }

  /** GET /jobs?queueName=&eventName=&state=completed,failed&uniqueKey=&payload={"k":"v"}&page=&pageSize= */
  @Get('jobs')
  list(
    @Query('queueName') queueName?: string,
    @Query('eventName') eventName?: string,
    @Query('state') state?: string,
    @Query('uniqueKey') uniqueKey?: string,
    @Query('payload') payload?: string,
    @Query('page') page?: string,
    @Query('pageSize') pageSize?: string,
  ): Promise<JobPage> {
    return this.jobs.findJobs({
      queueName,
      eventName,
      state: state === undefined ? undefined : (state.split(',') as JobState[]),
      uniqueKey,
      payload: payloadParam(payload),
      page: numberParam(page),
      pageSize: numberParam(pageSize),
    });
  }

  /** GET /jobs/:id — state, attempts, progress while running, result once completed. 404 when unknown. */
  @Get('jobs/:id')
  async show(@Param('id') id: string): Promise<JobRecord> {
    const job = await this.jobs.getJob(id);
    if (!job) throw new NotFoundException({ error: `No job ${id}` });
    return job;
  }

  /** GET /worker-processes — the processes polling now (host, pid, queues, running, last heartbeat). */
  @Get('worker-processes')
  workers(): Promise<WorkerProcessInfo[]> {
    return this.jobs.listWorkers();
  }
}
