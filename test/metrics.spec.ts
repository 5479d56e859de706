/**
 * Issue 6, point 5: Prometheus metrics (nestjs-workers/prometheus) — counters per queue and event,
 * the execution-time histogram and queue-depth gauges, scraped as text and parsed.
 */
import { jest } from '@jest/globals';
import { Test } from '@nestjs/testing';
import { Registry } from 'prom-client';
import { BaseEvent, QueueEvent, WorkerError, WorkerModule } from '../lib/index.js';
import { WorkerMetrics, WorkerMetricsModule } from '../lib/metrics/index.js';
import { testDatabases } from './support/databases.js';
import { createTestApp, runOncePass, type TestApp } from './support/test-app.js';

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
      const labels = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((pair) => [pair[1]!, pair[2]!]));
      return { name: match[1]!, labels, value: Number(match[3]) };
    });
}

function valueOf(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((sample) => sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value))?.value;
}

describe.each(testDatabases())('WorkerMetrics ($name)', (database) => {
  let t: TestApp;
  let registry: Registry;

  beforeEach(async () => {
    registry = new Registry();
    t = await createTestApp(
      { events: [MetricsMailEvent, MetricsReportEvent] },
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
    await t.workers.runWorker(runOncePass('metrics-mail', { runOnce: false }));
    await t.workers.runWorker(runOncePass('metrics-report'));

    const samples = await scrape();
    const mail = { queue: 'metrics-mail', event: 'MetricsMailEvent' };
    expect(valueOf(samples, 'nestjs_workers_events_dispatched_total', mail)).toBe(2);
    expect(valueOf(samples, 'nestjs_workers_events_processed_total', mail)).toBe(1);
    expect(valueOf(samples, 'nestjs_workers_events_retried_total', mail)).toBe(1);
    expect(valueOf(samples, 'nestjs_workers_events_failed_total', mail)).toBe(1);
    expect(valueOf(samples, 'nestjs_workers_events_processed_total', { queue: 'metrics-report', event: 'MetricsReportEvent' })).toBe(1);
    expect(valueOf(samples, 'nestjs_workers_event_duration_seconds_count', { ...mail, outcome: 'completed' })).toBe(1);
    expect(valueOf(samples, 'nestjs_workers_event_duration_seconds_count', { ...mail, outcome: 'retrying' })).toBe(1);
    expect(valueOf(samples, 'nestjs_workers_event_duration_seconds_count', { ...mail, outcome: 'failed' })).toBe(1);
    expect(valueOf(samples, 'nestjs_workers_event_duration_seconds_bucket', { ...mail, outcome: 'completed', le: '+Inf' })).toBe(1);
  });

  it('reports queue depth gauges that match getQueueStatistics, from one query per scrape', async () => {
    await t.events.dispatch(new MetricsMailEvent({ fail: true }));
    await t.workers.runWorker(runOncePass('metrics-mail', { runOnce: false })); // both attempts (@QueueEvent retries 2)
    for (let n = 0; n < 3; n++) await t.events.dispatch(new MetricsReportEvent(null));
    const statistics = jest.spyOn(t.workers, 'getQueueStatistics');

    const samples = await scrape();
    expect(statistics).toHaveBeenCalledTimes(1);
    const [report, mail] = await t.workers.getQueueStatistics(['metrics-report', 'metrics-mail']);
    for (const [gauge, field] of [['pending', 'pending'], ['due', 'due'], ['running', 'running'], ['delayed', 'delayed'], ['failed', 'failed']] as const) {
      expect(valueOf(samples, `nestjs_workers_queue_${gauge}`, { queue: 'metrics-report' })).toBe(report![field]);
      expect(valueOf(samples, `nestjs_workers_queue_${gauge}`, { queue: 'metrics-mail' })).toBe(mail![field]);
    }
    expect(valueOf(samples, 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(3);
    expect(valueOf(samples, 'nestjs_workers_queue_failed', { queue: 'metrics-mail' })).toBe(1);
    expect(valueOf(samples, 'nestjs_workers_queue_oldest_due_age_seconds', { queue: 'metrics-report' })).toBeGreaterThanOrEqual(0);
  });

  it('still serves the counters when the statistics query fails, keeping the last gauge values', async () => {
    await t.events.dispatch(new MetricsReportEvent(null));
    expect(valueOf(await scrape(), 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(1);
    jest.spyOn(t.workers, 'getQueueStatistics').mockRejectedValueOnce(new Error('database is locked'));
    await t.events.dispatch(new MetricsReportEvent(null));

    const samples = await scrape();
    expect(valueOf(samples, 'nestjs_workers_events_dispatched_total', { queue: 'metrics-report' })).toBe(2);
    expect(valueOf(samples, 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(1);
    expect(valueOf(await scrape(), 'nestjs_workers_queue_pending', { queue: 'metrics-report' })).toBe(2);
  });
});

describe('WorkerMetrics registration', () => {
  it('refuses a second set of metrics on one registry, and frees its names when the app closes', async () => {
    const registry = new Registry();
    const first = await createTestApp({ events: [MetricsReportEvent] }, { imports: [WorkerMetricsModule.register({ registry })] });
    try {
      const second = Test.createTestingModule({
        imports: [WorkerModule.forRoot({ autoStart: false, database: { database: ':memory:' } }), WorkerMetricsModule.register({ registry })],
      });
      const attempt = second.compile().then((moduleRef) => moduleRef.init());
      await expect(attempt).rejects.toThrow(WorkerError);
      await expect(attempt).rejects.toThrow('Metric nestjs_workers_events_dispatched_total is already registered on this registry');
      expect(registry.getSingleMetric('nestjs_workers_events_processed_total')).toBeDefined();
    } finally {
      await first.close();
    }
    expect(registry.getMetricsAsArray()).toEqual([]);
    // After close, events are no longer counted on the old registry.
    const again = await createTestApp({ events: [MetricsReportEvent] }, { imports: [WorkerMetricsModule.register({ registry })] });
    await again.close();
  });
});
