import { Controller, Get, Header } from '@nestjs/common';
import { WorkerMetrics } from '../lib/metrics/index.js';

/** GET /metrics for Prometheus: the workers' counters, execution-time histogram and queue depths. */
@Controller('metrics')
export class MetricsController {
  constructor(private readonly workerMetrics: WorkerMetrics) {}

  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.workerMetrics.metrics();
  }
}
