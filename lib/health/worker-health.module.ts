import { type DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import {
  validateHealthThresholds,
  WORKER_HEALTH_THRESHOLDS,
  WorkerHealthIndicator,
  type WorkerHealthThresholds,
} from './worker-health.indicator.js';

/**
 * Provides WorkerHealthIndicator (import it beside WorkerModule). `register(thresholds)` sets the
 * default thresholds; `isHealthy(key, thresholds)` can override them per check.
 */
@Module({})
export class WorkerHealthModule {
  static register(thresholds: WorkerHealthThresholds = {}): DynamicModule {
    return {
      module: WorkerHealthModule,
      imports: [TerminusModule],
      providers: [
        { provide: WORKER_HEALTH_THRESHOLDS, useValue: validateHealthThresholds(thresholds) },
        WorkerHealthIndicator,
      ],
      exports: [WorkerHealthIndicator, TerminusModule],
    };
  }
}
