import { type DynamicModule, Module } from '@nestjs/common';
import { WORKER_METRICS_OPTIONS, WorkerMetrics, type WorkerMetricsOptions } from './worker-metrics.js';

/** Provides WorkerMetrics; import it beside WorkerModule (whose services it reads). */
@Module({})
export class WorkerMetricsModule {
  static register(options: WorkerMetricsOptions = {}): DynamicModule {
    return {
      module: WorkerMetricsModule,
      providers: [{ provide: WORKER_METRICS_OPTIONS, useValue: options }, WorkerMetrics],
      exports: [WorkerMetrics],
    };
  }
}
