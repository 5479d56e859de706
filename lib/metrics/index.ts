/** `nestjs-workers/prometheus`: Prometheus metrics of the workers (needs prom-client installed). */
export { WORKER_METRICS_OPTIONS, WorkerMetrics, type WorkerMetricsOptions } from './worker-metrics.js';
export { WorkerMetricsModule } from './worker-metrics.module.js';
