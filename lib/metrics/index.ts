/** `nestjs-workers/prometheus`: Prometheus metrics of the workers (needs prom-client installed). */
export {
  DEFAULT_DURATION_BUCKETS,
  DEFAULT_METRICS_PREFIX,
  WORKER_METRICS_OPTIONS,
  WorkerMetrics,
  type WorkerMetricsOptions,
  type WorkerMetricsRegistry,
} from './worker-metrics.js';
export { WorkerMetricsModule } from './worker-metrics.module.js';
