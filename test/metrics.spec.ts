/**
 * Prometheus metrics (nestjs-workers/prometheus) on every database: counters per queue and event,
 * the execution-time histogram and queue-depth gauges scraped as text and parsed, registry options,
 * and registration and removal on close.
 */
import { jest } from '@jest/globals';
import { Test } from '@nestjs/testing';
import {
  Counter,
  type OpenMetricsContentType,
  openMetricsContentType,
  register as globalRegistry,
  Registry,
} from 'prom-client';
import {
  BaseEvent,
  InvalidWorkerOptionsError,
  QueueEvent,
  WorkerError,
  WorkerFlowService,
  WorkerLifecycle,
  WorkerModule,
} from '../lib/index.js';
import { WorkerMetrics, WorkerMetricsModule, type WorkerMetricsOptions } from '../lib/metrics/index.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, RecordingLogger, runOncePass, type TestApp } from './support/test-app.js';

@QueueEvent('metrics-mail', { retries: 2 })
class MetricsMailEvent extends BaseEvent<{ fail: boolean }> {
  async execute(): Promise<void> {
    if (this.getPayload().fail) throw new Error('smtp down');
  }
}

@QueueEvent('metrics-report')
class MetricsReportEvent extends BaseEvent<null> {
  async execute(): Promise<void> {}
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format: `name{label="value",…} number` lines, comments skipped. */
function parseMetrics(text: string): Sample[] {
  return text
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      if (!match) throw new Error(`Not a metric line: ${line}`);
      const labels = Object.fromEntries(
        [...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((pair) => [
          pair[1]!,
          pair[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)),
        ]),
      );
      return { name: match[1]!, labels, value: match[3] === '+Inf' ? Infinity : Number(match[3]) };
    });
}

/** The samples of `name` whose labels include `labels`. */
function samplesOf(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter(
    (sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value),
  );
}

/** The value of the one sample of `name` with exactly `labels`; undefined when there is none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = samplesOf(samples, name, labels).filter(
    (sample) => Object.keys(sample.labels).length === Object.keys(labels).length,
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

describe('parseMetrics (test helper)', () => {
  it('reads names, escaped label values and special numbers', () => {
    const samples = parseMetrics(
      '# HELP x_total Things\n# TYPE x_total counter\nx_total{queue="a\\"b",event="E"} 3\nup 1\nh_bucket{le="+Inf"} 2\nh_sum 0.25\n',
    );
    expect(samples).toEqual([
      { name: 'x_total', labels: { queue: 'a"b', event: 'E' }, value: 3 },
      { name: 'up', labels: {}, value: 1 },
      { name: 'h_bucket', labels: { le: '+Inf' }, value: 2 },
      { name: 'h_sum', labels: {}, value: 0.25 },
    ]);
    expect(() => parseMetrics('not a metric line')).toThrow('Not a metric line');
  });
});

describe.each(testDatabases())('WorkerMetrics ($name)', (database) => {
  let t: TestApp;
  let registry: Registry;
  let logger: RecordingLogger;

  beforeEach(async () => {
    registry = new Registry();
    logger = new RecordingLogger();
    t = await createTestApp(
      { events: [MetricsMailEvent, MetricsReportEvent], logger },
      { imports: [WorkerMetricsModule.register({ registry })] },
      database,
    );
  });

  afterEach(async () => {
    await t.close();
  });

  async function scrape(): Promise<Sample[]> {
    return parseMetrics(await t.app.get(WorkerMetrics).metrics());
  }

  it('counts dispatched, processed, retried and failed events per queue and event, and times each attempt', async () => {
    await t.events.dispatch(new MetricsMailEvent({ fail: false }));
    await t.events.dispatch(new MetricsMailEvent({ fail: true }));
    await t.events.dispatch(new MetricsReportEvent(null));
    await t.events.dispatch(new MetricsReportEvent(null));
    await t.workers.runWorker(runOncePass('metrics-mail', { runOnce: false })); // the failing one: 2 attempts
    await t.workers.runWorker(runOncePass('metrics-report'));

    const samples = await scrape();
    const mail = { queue: 'metrics-mail', event: 'MetricsMailEvent' };
    const report = { queue: 'metrics-report', event: 'MetricsReportEvent' };
    const counters = (name: string) =>
      samplesOf(samples, `nestjs_workers_events_${name}_total`).map(
        (sample) => `${sample.labels.queue} ${sample.labels.event} ${sample.value}`,
      );
    expect(counters('dispatched')).toEqual(['metrics-mail MetricsMailEvent 2', 'metrics-report MetricsReportEvent 2']);
    expect(counters('processed')).toEqual(['metrics-mail MetricsMailEvent 1', 'metrics-report MetricsReportEvent 2']);
    expect(counters('retried')).toEqual(['metrics-mail MetricsMailEvent 1']);
    expect(counters('failed')).toEqual(['metrics-mail MetricsMailEvent 1']);

    const histogram = 'nestjs_workers_event_duration_seconds';
    expect(valueOf(samples, `${histogram}_count`, { ...mail, outcome: 'completed' })).toBe(1);
    expect(valueOf(samples, `${histogram}_count`, { ...mail, outcome: 'retrying' })).toBe(1);
    expect(valueOf(samples, `${histogram}_count`, { ...mail, outcome: 'failed' })).toBe(1);
    expect(valueOf(samples, `${histogram}_count`, { ...report, outcome: 'completed' })).toBe(2);
    expect(samplesOf(samples, `${histogram}_count`)).toHaveLength(4);
    expect(valueOf(samples, `${histogram}_bucket`, { ...report, outcome: 'completed', le: '+Inf' })).toBe(2);
    expect(valueOf(samples, `${histogram}_bucket`, { ...report, outcome: 'completed', le: '60' })).toBe(2);
    expect(valueOf(samples, `${histogram}_sum`, { ...report, outcome: 'completed' })).toBeGreaterThanOrEqual(0);
  });

  it('reports queue depth gauges that match getQueueStatistics, from one query per scrape', async () => {
    await t.events.dispatch(new MetricsMailEvent({ fail: true }));
    await t.workers.runWorker(runOncePass('metrics-mail', { runOnce: false })); // both attempts (@QueueEvent retries 2)
    for (let n = 0; n < 3; n++) await t.events.dispatch(new MetricsReportEvent(null));
    await t.events.dispatch(new MetricsReportEvent(null), { delaySeconds: 3600 });
    const statistics = jest.spyOn(t.workers, 'getQueueStatistics');

    const samples = await scrape();
    expect(statistics).toHaveBeenCalledTimes(1);
    expect(statistics).toHaveBeenCalledWith(undefined);
    const [report, mail] = await t.workers.getQueueStatistics(['metrics-report', 'metrics-mail']);
    const gauges = [
      ['pending', 'pending'],
      ['due', 'due'],
      ['running', 'running'],
      ['delayed', 'delayed'],
      ['failed', 'failed'],
    ] as const;
    for (const [gauge, field] of gauges) {
      expect(valueOf(samples, `nestjs_workers_queue_${gauge}`, { queue: 'metrics-report' })).toBe(report![field]);
      expect(valueOf(samples, `nestjs_workers_queue_${gauge}`, { queue: 'metrics-mail' })).toBe(mail![field]);
    }
    expect(report).toMatchObject({ pending: 4, due: 3, running: 0, delayed: 1, failed: 0 });
    expect(mail).toMatchObject({ pending: 0, due: 0, running: 0, delayed: 0, failed: 1 });
    const oldest = valueOf(samples, 'nestjs_workers_queue_oldest_due_age_seconds', { queue: 'metrics-report' })!;
    expect(oldest).toBeGreaterThanOrEqual(0);
    expect(oldest).toBeLessThan(60);
    expect(valueOf(samples, 'nestjs_workers_queue_oldest_due_age_seconds', { queue: 'metrics-mail' })).toBe(0);
    expect(valueOf(samples, 'nestjs_workers_queue_paused', { queue: 'metrics-report' })).toBe(0);
    await t.app.get(WorkerFlowService).pauseQueue('metrics-report');
    expect(valueOf(await scrape(), 'nestjs_workers_queue_paused', { queue: 'metrics-report' })).toBe(1);
    await t.app.get(WorkerFlowService).resumeQueue('metrics-report');

    // A second scrape queries again and follows the table.
    await t.workers.runWorker(runOncePass('metrics-report'));
    const after = await scrape();
    expect(statistics).toHaveBeenCalledTimes(4); // 3 scrapes + the direct call above
    expect(valueOf(after, 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(1);
    expect(valueOf(after, 'nestjs_workers_queue_due', { queue: 'metrics-report' })).toBe(0);
    expect(
      valueOf(after, 'nestjs_workers_events_processed_total', { queue: 'metrics-report', event: 'MetricsReportEvent' }),
    ).toBe(3);
  });

  it('still serves the counters when the statistics query fails, keeping the last gauge values and logging the error', async () => {
    await t.events.dispatch(new MetricsReportEvent(null));
    expect(valueOf(await scrape(), 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(1);
    jest.spyOn(t.workers, 'getQueueStatistics').mockRejectedValueOnce(new Error('database is locked'));
    await t.events.dispatch(new MetricsReportEvent(null));

    const samples = await scrape();
    expect(
      valueOf(samples, 'nestjs_workers_events_dispatched_total', {
        queue: 'metrics-report',
        event: 'MetricsReportEvent',
      }),
    ).toBe(2);
    expect(valueOf(samples, 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(1);
    expect(logger.messages('error')).toEqual([
      'Could not read queue statistics for the depth gauges (they keep their last values): database is locked',
    ]);
    // The next scrape reads the table again.
    expect(valueOf(await scrape(), 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(2);
    expect(logger.messages('error')).toHaveLength(1);
  });

  it('drops the gauges of a queue the statistics no longer report', async () => {
    const gone = {
      queueName: 'metrics-retired',
      pending: 5,
      due: 5,
      running: 0,
      delayed: 0,
      failed: 2,
      oldestDueAgeMs: 1500,
      paused: false,
    };
    jest.spyOn(t.workers, 'getQueueStatistics').mockResolvedValueOnce([gone]);
    const first = await scrape();
    expect(valueOf(first, 'nestjs_workers_queue_pending', { queue: 'metrics-retired' })).toBe(5);
    expect(valueOf(first, 'nestjs_workers_queue_oldest_due_age_seconds', { queue: 'metrics-retired' })).toBe(1.5);
    expect(samplesOf(first, 'nestjs_workers_queue_pending')).toHaveLength(1);

    const second = await scrape();
    expect(samplesOf(second, 'nestjs_workers_queue_failed', { queue: 'metrics-retired' })).toEqual([]);
    expect(samplesOf(second, 'nestjs_workers_queue_pending').map((sample) => sample.labels.queue)).toEqual([
      'metrics-mail',
      'metrics-report',
    ]);
  });
});

describe('WorkerMetrics options', () => {
  it('registers on prom-client’s global registry by default, with a custom prefix, and removes its metrics on close', async () => {
    const t = await createTestApp(
      { events: [MetricsReportEvent] },
      { imports: [WorkerMetricsModule.register({ prefix: 'myapp_jobs_' })] },
    );
    try {
      const metrics = t.app.get(WorkerMetrics);
      expect(metrics.metricNames).toHaveLength(15);
      for (const name of metrics.metricNames) expect(globalRegistry.getSingleMetric(name)).toBeDefined();
      await t.events.dispatch(new MetricsReportEvent(null));
      expect(metrics.contentType).toBe(globalRegistry.contentType);
      const samples = parseMetrics(await globalRegistry.metrics());
      expect(
        valueOf(samples, 'myapp_jobs_events_dispatched_total', {
          queue: 'metrics-report',
          event: 'MetricsReportEvent',
        }),
      ).toBe(1);
      expect(valueOf(samples, 'myapp_jobs_queue_pending', { queue: 'metrics-report' })).toBe(1);
      expect(samplesOf(samples, 'nestjs_workers_events_dispatched_total')).toEqual([]);
    } finally {
      await t.close();
    }
    expect(
      globalRegistry.getMetricsAsArray().filter((metric) => String(metric.name).startsWith('myapp_jobs_')),
    ).toEqual([]);
  });

  it('reports only the queues asked for, with the buckets given', async () => {
    const registry = new Registry();
    const t = await createTestApp(
      { events: [MetricsMailEvent, MetricsReportEvent] },
      {
        imports: [
          WorkerMetricsModule.register({ registry, queues: ['metrics-report', 'metrics-idle'], buckets: [0.5, 2] }),
        ],
      },
    );
    try {
      await t.events.dispatch(new MetricsReportEvent(null));
      await t.events.dispatch(new MetricsMailEvent({ fail: false }));
      await t.workers.runWorker(runOncePass('metrics-report'));
      const statistics = jest.spyOn(t.workers, 'getQueueStatistics');
      const samples = parseMetrics(await t.app.get(WorkerMetrics).metrics());
      expect(statistics).toHaveBeenCalledWith(['metrics-report', 'metrics-idle']);
      expect(
        samplesOf(samples, 'nestjs_workers_queue_pending').map((sample) => [sample.labels.queue, sample.value]),
      ).toEqual([
        ['metrics-report', 0],
        ['metrics-idle', 0],
      ]);
      const buckets = samplesOf(samples, 'nestjs_workers_event_duration_seconds_bucket', { queue: 'metrics-report' });
      expect(buckets.map((sample) => sample.labels.le)).toEqual(['0.5', '2', '+Inf']);
    } finally {
      await t.close();
    }
  });

  it('serves an OpenMetrics registry with its own content type', async () => {
    const registry = new Registry<OpenMetricsContentType>();
    registry.setContentType(openMetricsContentType);
    const t = await createTestApp(
      { events: [MetricsReportEvent] },
      { imports: [WorkerMetricsModule.register({ registry })] },
    );
    try {
      const metrics = t.app.get(WorkerMetrics);
      expect(metrics.contentType).toBe(openMetricsContentType);
      await t.events.dispatch(new MetricsReportEvent(null));
      const text = await metrics.metrics();
      expect(text).toContain(
        'nestjs_workers_events_dispatched_total{queue="metrics-report",event="MetricsReportEvent"} 1',
      );
      expect(text.trimEnd().endsWith('# EOF')).toBe(true);
    } finally {
      await t.close();
    }
  });

  it.each<[string, WorkerMetricsOptions, string]>([
    [
      'an unknown key',
      { queue: ['a'] } as WorkerMetricsOptions,
      'Invalid nestjs-workers option "queue": is not an option (known: registry, prefix, buckets, queues)',
    ],
    [
      'a prefix that cannot start a metric name',
      { prefix: 'my-app_' },
      'Invalid nestjs-workers option "prefix": must be empty or start a Prometheus metric name',
    ],
    [
      'a registry that is not one',
      { registry: {} as Registry },
      'Invalid nestjs-workers option "registry": must be a prom-client Registry',
    ],
    ['empty buckets', { buckets: [] }, 'Invalid nestjs-workers option "buckets": must be a non-empty array of seconds'],
    [
      'a negative bucket',
      { buckets: [-1, 1] },
      'Invalid nestjs-workers option "buckets[0]": must be a finite number ≥ 0 (got -1)',
    ],
    [
      'buckets out of order',
      { buckets: [1, 0.5] },
      'Invalid nestjs-workers option "buckets": must be increasing (0.5 follows 1)',
    ],
    ['no queues', { queues: [] }, 'Invalid nestjs-workers option "queues": must be a non-empty array of queue names'],
    [
      'a blank queue name',
      { queues: ['ok', ' '] },
      'Invalid nestjs-workers option "queues[1]": must be a non-empty string (got " ")',
    ],
  ])('refuses %s at register()', (_, options, message) => {
    expect(() => WorkerMetricsModule.register(options)).toThrow(InvalidWorkerOptionsError);
    expect(() => WorkerMetricsModule.register(options)).toThrow(message);
  });
});

describe('WorkerMetrics registration and shutdown', () => {
  /** Starts an application whose metrics are expected not to register; closes what did start. */
  async function failedStart(options: WorkerMetricsOptions): Promise<void> {
    const moduleRef = await Test.createTestingModule({
      imports: [
        WorkerModule.forRoot({ autoStart: false, database: { database: ':memory:' } }),
        WorkerMetricsModule.register(options),
      ],
    }).compile();
    try {
      await moduleRef.init();
    } finally {
      await moduleRef.close();
    }
  }

  it('refuses a second set of metrics on one registry with a clear error, leaving the first one working', async () => {
    const registry = new Registry();
    const first = await createTestApp(
      { events: [MetricsReportEvent] },
      { imports: [WorkerMetricsModule.register({ registry })] },
    );
    try {
      await expect(failedStart({ registry })).rejects.toThrow(WorkerError);
      await expect(failedStart({ registry })).rejects.toThrow(
        'Metric nestjs_workers_events_dispatched_total is already registered on this registry: give each WorkerMetricsModule its own registry or prefix',
      );
      await first.events.dispatch(new MetricsReportEvent(null));
      const samples = parseMetrics(await registry.metrics());
      expect(
        valueOf(samples, 'nestjs_workers_events_dispatched_total', {
          queue: 'metrics-report',
          event: 'MetricsReportEvent',
        }),
      ).toBe(1);
    } finally {
      await first.close();
    }
    // A second set with its own prefix fits on the same registry.
    const other = await createTestApp(
      { events: [MetricsReportEvent] },
      {
        imports: [
          WorkerMetricsModule.register({ registry }),
          WorkerMetricsModule.register({ registry, prefix: 'other_' }),
        ],
      },
    );
    await other.close();
  });

  it('registers nothing when one of its names is taken', async () => {
    const registry = new Registry();
    new Counter({ name: 'nestjs_workers_queue_failed', help: 'the application’s own', registers: [registry] });
    await expect(failedStart({ registry })).rejects.toThrow(
      'Metric nestjs_workers_queue_failed is already registered on this registry',
    );
    expect(registry.getMetricsAsArray().map((metric) => metric.name)).toEqual(['nestjs_workers_queue_failed']);
  });

  it('unsubscribes and removes its metrics on app.close(): later lifecycle events are not counted and raise nothing', async () => {
    const registry = new Registry();
    const logger = new RecordingLogger();
    const t = await createTestApp(
      { events: [MetricsReportEvent], logger },
      { imports: [WorkerMetricsModule.register({ registry })] },
    );
    const lifecycle = t.app.get(WorkerLifecycle);
    await t.events.dispatch(new MetricsReportEvent(null));
    const dispatched = registry.getSingleMetric('nestjs_workers_events_dispatched_total') as Counter;
    expect((await dispatched.get()).values.map((value) => value.value)).toEqual([1]);
    expect(lifecycle.hasListeners).toBe(true);

    await t.close();
    expect(lifecycle.hasListeners).toBe(false);
    expect(registry.getMetricsAsArray()).toEqual([]);
    expect(await registry.metrics()).toBe('\n');
    await lifecycle.emit({
      name: 'dispatched',
      queueName: 'metrics-report',
      eventName: 'MetricsReportEvent',
      attributes: {} as never,
    });
    await lifecycle.emit({
      name: 'completed',
      queueName: 'metrics-report',
      eventName: 'MetricsReportEvent',
      attributes: {} as never,
      durationMs: 5,
    });
    expect((await dispatched.get()).values.map((value) => value.value)).toEqual([1]);
    expect(logger.messages('error')).toEqual([]);

    // The same registry takes a new set of metrics after the old one is gone, starting from zero.
    const again = await createTestApp(
      { events: [MetricsReportEvent] },
      { imports: [WorkerMetricsModule.register({ registry })] },
    );
    try {
      const samples = parseMetrics(await again.app.get(WorkerMetrics).metrics());
      expect(samplesOf(samples, 'nestjs_workers_events_dispatched_total')).toEqual([]);
      expect(valueOf(samples, 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(0);
    } finally {
      await again.close();
    }
  });
});
