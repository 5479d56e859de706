import { type DynamicModule, Module } from '@nestjs/common';
import {
  validateMetricsOptions,
  WORKER_METRICS_OPTIONS,
  WorkerMetrics,
  type WorkerMetricsOptions,
} from './worker-metrics.js';

/**
 * Provides WorkerMetrics; import it beside WorkerModule (whose WorkerService and WorkerLifecycle it
 * reads, so WorkerModule must be global — the default — or imported by the same module).
 * Options are checked here: a bad one throws InvalidWorkerOptionsError at register().
 */
@Module({})
export class WorkerMetricsModule {
  static register(options: WorkerMetricsOptions = {}): DynamicModule {
    return {
      module: WorkerMetricsModule,
      providers: [{ provide: WORKER_METRICS_OPTIONS, useValue: validateMetricsOptions(options) }, WorkerMetrics],
      exports: [WorkerMetrics],
    };
  }
}
