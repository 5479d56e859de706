import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit, Optional } from '@nestjs/common';
import {
  Counter,
  Gauge,
  Histogram,
  type OpenMetricsContentType,
  type Registry,
  register as globalRegistry,
} from 'prom-client';
import { describeError } from '../errors/describe-error.js';
import { InvalidWorkerOptionsError, WorkerError } from '../errors/worker.error.js';
import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { WorkerLifecycleEvent } from '../interfaces/worker-lifecycle.interface.js';
import { WorkerLifecycle } from '../lifecycle/worker-lifecycle.js';
import {
  assertKnownKeys,
  assertNumber,
  assertPlainObject,
  assertStoredName,
} from '../common/worker-options.validation.js';
import { WorkerService } from '../processing/worker.service.js';
import type { ResolvedWorkerConfig } from '../worker.config.js';
import { WORKER_CONFIG } from '../worker.constants.js';
import { depthGaugesUnreadable, metricAlreadyRegistered } from '../worker.messages.js';

/** A prom-client registry, Prometheus text format (the default) or OpenMetrics. */
export type WorkerMetricsRegistry = Registry | Registry<OpenMetricsContentType>;

export interface WorkerMetricsOptions {
  /** Where the metrics are registered. Default: prom-client's global registry (`register`). */
  registry?: WorkerMetricsRegistry;
  /** Prefix of every metric name. Default 'nestjs_workers_'. */
  prefix?: string;
  /** Upper bounds of the execution-time histogram's buckets, in seconds, increasing. */
  buckets?: number[];
  /** Queues whose depth is reported. Default: every known queue and every queue with rows. */
  queues?: string[];
}

/** DI token of the options given to WorkerMetricsModule.register(). */
export const WORKER_METRICS_OPTIONS = 'NESTJS_WORKERS_METRICS_OPTIONS';

export const DEFAULT_METRICS_PREFIX = 'nestjs_workers_';
export const DEFAULT_DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

const OPTION_KEYS = ['registry', 'prefix', 'buckets', 'queues'] as const;
const PREFIX_PATTERN = /^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/;

/** Checks WorkerMetricsModule.register() options; throws InvalidWorkerOptionsError naming the field. */
export function validateMetricsOptions(options: WorkerMetricsOptions): WorkerMetricsOptions {
  const raw: unknown = options;
  assertPlainObject('metrics options', raw);
  assertKnownKeys('', raw, OPTION_KEYS);
  const { registry, prefix, buckets, queues } = raw;
  if (registry !== undefined) {
    const methods = registry as Record<string, unknown> | null;
    if (
      typeof methods?.metrics !== 'function' ||
      typeof methods.getSingleMetric !== 'function' ||
      typeof methods.removeSingleMetric !== 'function'
    ) {
      throw new InvalidWorkerOptionsError('registry', 'must be a prom-client Registry');
    }
  }
  if (prefix !== undefined && (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix))) {
    throw new InvalidWorkerOptionsError(
      'prefix',
      `must be empty or start a Prometheus metric name: [a-zA-Z_:][a-zA-Z0-9_:]* (got ${JSON.stringify(prefix)})`,
    );
  }
  if (buckets !== undefined) {
    if (!Array.isArray(buckets) || buckets.length === 0)
      throw new InvalidWorkerOptionsError('buckets', 'must be a non-empty array of seconds');
    buckets.forEach((bound: unknown, index) => {
      assertNumber(`buckets[${index}]`, bound, 0);
      if (index > 0 && (bound as number) <= (buckets[index - 1] as number)) {
        throw new InvalidWorkerOptionsError(
          'buckets',
          `must be increasing (${String(bound)} follows ${String(buckets[index - 1])})`,
        );
      }
    });
  }
  if (queues !== undefined) {
    if (!Array.isArray(queues) || queues.length === 0)
      throw new InvalidWorkerOptionsError('queues', 'must be a non-empty array of queue names');
    queues.forEach((queue: unknown, index) => assertStoredName(`queues[${index}]`, queue));
  }
  return options;
}

type CountedEvent = WorkerLifecycleEvent['name'];

const COUNTERS: Record<CountedEvent, [name: string, help: string]> = {
  dispatched: ['events_dispatched_total', 'Events stored for a worker'],
  completed: ['events_processed_total', 'Events that ran successfully'],
  retrying: ['events_retried_total', 'Failed attempts that will run again'],
  failed: ['events_failed_total', 'Events moved to the failed store'],
  cancelled: ['events_cancelled_total', 'Events cancelled before or while they ran'],
  snoozed: ['events_snoozed_total', 'Events put back due later by this.snooze(), their attempt not counted'],
};

/** Among the failed: events that threw UnrecoverableError and failed whatever attempts they had left. */
const PERMANENT_FAILURES = [
  'events_failed_permanently_total',
  'Events moved to the failed store at once because execute() threw UnrecoverableError',
] as const;

const DURATION = [
  'event_duration_seconds',
  'Execution time of an attempt, by outcome (completed, retrying, failed, snoozed)',
] as const;

const DEPTH_GAUGES: Record<string, [help: string, read: (queue: QueueStatistics) => number]> = {
  queue_pending: ['Events in the pending table (due, delayed and running)', (queue) => queue.pending],
  queue_due: ['Events that may be claimed now', (queue) => queue.due],
  queue_running: ['Events leased to a worker', (queue) => queue.running],
  queue_delayed: ['Events waiting for a retry delay or a later start', (queue) => queue.delayed],
  queue_failed: ['Events in the failed store', (queue) => queue.failed],
  queue_oldest_due_age_seconds: [
    'How long the oldest due event has waited, in seconds (0 when none is due)',
    (queue) => (queue.oldestDueAgeMs ?? 0) / 1000,
  ],
  queue_paused: [
    '1 while the queue is paused for every process (WorkerFlowService.pauseQueue), else 0',
    (queue) => (queue.paused ? 1 : 0),
  ],
};

/**
 * Prometheus metrics of the workers: counters and an execution-time histogram fed by the lifecycle
 * events, and queue-depth gauges read from one statistics query per scrape. Registered on module
 * init, removed from the registry (and the lifecycle listener removed) on module destroy.
 */
@Injectable()
export class WorkerMetrics implements OnModuleInit, OnModuleDestroy {
  private readonly logger: ILoggerService;
  private readonly registry: WorkerMetricsRegistry;
  private readonly prefix: string;
  private readonly registered: string[] = [];
  private unsubscribe?: () => void;
  private counters?: Record<CountedEvent, Counter<'queue' | 'event'>>;
  private permanentFailures?: Counter<'queue' | 'event'>;
  private duration?: Histogram<'queue' | 'event' | 'outcome'>;
  private readonly gauges = new Map<string, Gauge<'queue'>>();
  private refreshing?: Promise<void>;

  constructor(
    @Inject(WORKER_METRICS_OPTIONS) private readonly options: WorkerMetricsOptions,
    private readonly workerService: WorkerService,
    private readonly lifecycle: WorkerLifecycle,
    @Optional() @Inject(WORKER_CONFIG) config?: ResolvedWorkerConfig,
  ) {
    validateMetricsOptions(options);
    this.registry = options.registry ?? globalRegistry;
    this.prefix = options.prefix ?? DEFAULT_METRICS_PREFIX;
    this.logger = config?.logger ?? new Logger(WorkerMetrics.name);
  }

  /** The registry's text exposition (every metric on it, not only the workers'), for a GET /metrics handler. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type header of `metrics()`'s text (Prometheus text format 0.0.4, or OpenMetrics). */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The full names of the metrics this instance registers (prefix included). */
  get metricNames(): string[] {
    const counters = [...Object.values(COUNTERS).map(([name]) => name), PERMANENT_FAILURES[0]];
    return [...counters, DURATION[0], ...Object.keys(DEPTH_GAUGES)].map((name) => this.prefix + name);
  }

  onModuleInit(): void {
    // Every name is checked before any is registered: a clash leaves the registry as it was.
    const taken = this.metricNames.find((name) => this.registry.getSingleMetric(name) !== undefined);
    if (taken) {
      throw new WorkerError(metricAlreadyRegistered(taken));
    }
    const registers = [this.registry];
    const counter = ([name, help]: readonly [string, string]) => {
      this.registered.push(this.prefix + name);
      return new Counter({ name: this.prefix + name, help, labelNames: ['queue', 'event'], registers });
    };
    this.counters = {
      dispatched: counter(COUNTERS.dispatched),
      completed: counter(COUNTERS.completed),
      retrying: counter(COUNTERS.retrying),
      failed: counter(COUNTERS.failed),
      cancelled: counter(COUNTERS.cancelled),
      snoozed: counter(COUNTERS.snoozed),
    };
    this.permanentFailures = counter(PERMANENT_FAILURES);
    this.registered.push(this.prefix + DURATION[0]);
    this.duration = new Histogram({
      name: this.prefix + DURATION[0],
      help: DURATION[1],
      labelNames: ['queue', 'event', 'outcome'],
      buckets: [...(this.options.buckets ?? DEFAULT_DURATION_BUCKETS)],
      registers,
    });
    const collect = () => this.refreshDepth();
    for (const [name, [help]] of Object.entries(DEPTH_GAUGES)) {
      this.registered.push(this.prefix + name);
      this.gauges.set(name, new Gauge({ name: this.prefix + name, help, labelNames: ['queue'], registers, collect }));
    }
    this.unsubscribe = this.lifecycle.subscribe((event) => this.count(event), 'WorkerMetrics');
  }

  onModuleDestroy(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const name of this.registered.splice(0)) this.registry.removeSingleMetric(name);
    this.gauges.clear();
  }

  private count(event: WorkerLifecycleEvent): void {
    const labels = { queue: event.queueName, event: event.eventName };
    this.counters?.[event.name].inc(labels);
    if (event.name === 'failed' && event.permanent) this.permanentFailures?.inc(labels);
    if (event.durationMs !== undefined && event.name !== 'dispatched') {
      this.duration?.observe({ ...labels, outcome: event.name }, event.durationMs / 1000);
    }
  }

  /**
   * prom-client calls every gauge's collect() at once (Promise.all) on a scrape; they share the one
   * statistics query in flight.
   */
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
      this.logger.error(depthGaugesUnreadable(describeError(error)));
      return;
    }
    for (const [name, [, read]] of Object.entries(DEPTH_GAUGES)) {
      const gauge = this.gauges.get(name);
      if (!gauge) continue; // the module was destroyed while the query ran
      gauge.reset();
      for (const queue of statistics) gauge.set({ queue: queue.queueName }, read(queue));
    }
  }
}
