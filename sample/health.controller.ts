import { Controller, Get } from '@nestjs/common';
import { HealthCheck, type HealthCheckResult, HealthCheckService } from '@nestjs/terminus';
import { WorkerHealthIndicator } from '../lib/health/index.js';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly workers: WorkerHealthIndicator,
  ) {}

  /**
   * Terminus output: 200 with each queue's statistics and the seed's summary (active, failed, total)
   * under `info.workers`, or 503 when a threshold of WorkerHealthModule.register() is passed.
   */
  @Get('workers')
  @HealthCheck()
  workersHealth(): Promise<HealthCheckResult> {
    return this.health.check([() => this.workers.isHealthy('workers')]);
  }
}
