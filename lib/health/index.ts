/** `nestjs-workers/terminus`: the @nestjs/terminus health indicator (needs @nestjs/terminus installed). */
export {
  WORKER_HEALTH_THRESHOLDS,
  WorkerHealthIndicator,
  type WorkerHealthThresholds,
} from './worker-health.indicator.js';
export { WorkerHealthModule } from './worker-health.module.js';
