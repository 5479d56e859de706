import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { Counter, Gauge, Histogram, type Registry, register as globalRegistry } from 'prom-client';
import { describeError } from '../errors/describe-error.js';
import { WorkerError } from '../errors/worker.error.js';
import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import type { WorkerLifecycleEvent } from '../interfaces/worker-lifecycle.interface.js';
import { WorkerLifecycle } from '../processing/worker-lifecycle.js';
import { WorkerService } from '../processing/worker.service.js';

export interface WorkerMetricsOptions {
  /** Where the metrics are registered. Default: prom-client's global registry. */
  registry?: Registry;
  /** Prefix of every metric name. Default 'nestjs_workers_'. */
  prefix?: string;
  /** Buckets of the execution-time histogram, in seconds. */
  buckets?: number[];
  /** Queues whose depth is reported. Default: every known queue and every queue with rows. */
  queues?: string[];
}

/** DI token of the options given to WorkerMetricsModule.register(). */
export const WORKER_METRICS_OPTIONS = 'NESTJS_WORKERS_METRICS_OPTIONS';

const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const DEPTH_GAUGES = {
  queue_pending: ['Events in the pending table (due, delayed and running)', (queue: QueueStatistics) => queue.pending],
  queue_due: ['Events that may be claimed now', (queue: QueueStatistics) => queue.due],
  queue_running: ['Events leased to a worker', (queue: QueueStatistics) => queue.running],
  queue_delayed: ['Events waiting for a retry delay', (queue: QueueStatistics) => queue.delayed],
  queue_failed: ['Events in the failed store', (queue: QueueStatistics) => queue.failed],
  queue_oldest_due_age_seconds: [
    'How long the oldest due event has waited, in seconds (0 when none is due)',
    (queue: QueueStatistics) => (queue.oldestDueAgeMs ?? 0) / 1000,
  ],
} as const;

/**
 * Prometheus metrics of the workers: counters and an execution-time histogram fed by the lifecycle
 * events, and queue-depth gauges read from one statistics query per scrape.
 */
@Injectable()
export class WorkerMetrics implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(WorkerMetrics.name);
  private readonly registry: Registry;
  private readonly prefix: string;
  private readonly names: string[] = [];
  private unsubscribe?: () => void;
  private counters?: Record<'dispatched' | 'completed' | 'retrying' | 'failed', Counter<'queue' | 'event'>>;
  private duration?: Histogram<'queue' | 'event' | 'outcome'>;
  private readonly gauges = new Map<string, Gauge<'queue'>>();
  private refreshing?: Promise<void>;

  constructor(
    @Inject(WORKER_METRICS_OPTIONS) private readonly options: WorkerMetricsOptions,
    private readonly workerService: WorkerService,
    private readonly lifecycle: WorkerLifecycle,
  ) {
    this.registry = options.registry ?? globalRegistry;
    this.prefix = options.prefix ?? 'nestjs_workers_';
  }

  /** The registry's text exposition, for a GET /metrics handler (with `contentType`). */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  onModuleInit(): void {
    const counter = (name: string, help: string) => new Counter({ name: this.claim(name), help, labelNames: ['queue', 'event'], registers: [this.registry] });
    this.counters = {
      dispatched: counter('events_dispatched_total', 'Events stored for a worker'),
      completed: counter('events_processed_total', 'Events that ran successfully'),
      retrying: counter('events_retried_total', 'Failed attempts that will run again'),
      failed: counter('events_failed_total', 'Events moved to the failed store'),
    };
    this.duration = new Histogram({
      name: this.claim('event_duration_seconds'),
      help: 'Execution time of an attempt, by outcome (completed, retrying, failed)',
      labelNames: ['queue', 'event', 'outcome'],
      buckets: this.options.buckets ?? DEFAULT_BUCKETS,
      registers: [this.registry],
    });
    for (const [name, [help]] of Object.entries(DEPTH_GAUGES)) {
      const collect = () => this.refreshDepth();
      this.gauges.set(name, new Gauge({ name: this.claim(name), help, labelNames: ['queue'], registers: [this.registry], collect }));
    }
    this.unsubscribe = this.lifecycle.subscribe((event) => this.count(event), 'WorkerMetrics');
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    for (const name of this.names.splice(0)) this.registry.removeSingleMetric(name);
  }

  private claim(name: string): string {
    const fullName = this.prefix + name;
    if (this.registry.getSingleMetric(fullName)) {
      throw new WorkerError(
        `Metric ${fullName} is already registered on this registry: give each WorkerMetricsModule its own registry or prefix`,
      );
    }
    this.names.push(fullName);
    return fullName;
  }

  private count(event: WorkerLifecycleEvent): void {
    const labels = { queue: event.queueName, event: event.eventName };
    this.counters?.[event.name].inc(labels);
    if (event.durationMs !== undefined && event.name !== 'dispatched') {
      this.duration?.observe({ ...labels, outcome: event.name }, event.durationMs / 1000);
    }
  }

  /** Every depth gauge's collect() shares one statistics query per scrape. */
  private refreshDepth(): Promise<void> {
    this.refreshing ??= this.readDepth().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async readDepth(): Promise<void> {
    let statistics: QueueStatistics[];
    try {
      statistics = await this.workerService.getQueueStatistics(this.options.queues);
    } catch (error) {
      // The counters and histogram still scrape; the gauges keep their last values.
      this.logger.error(`Could not read queue statistics for the depth gauges: ${describeError(error)}`);
      return;
    }
    for (const [name, [, read]] of Object.entries(DEPTH_GAUGES)) {
      const gauge = this.gauges.get(name)!;
      gauge.reset();
      for (const queue of statistics) gauge.set({ queue: queue.queueName }, read(queue));
    }
  }
}
