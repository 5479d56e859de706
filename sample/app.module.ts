import { randomBytes } from 'node:crypto';
import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { Registry } from 'prom-client';
import { WorkerHealthModule } from '../lib/health/index.js';
import { WorkerMetricsModule } from '../lib/metrics/index.js';
import { WorkerModule, type WorkerModuleOptions } from '../lib/index.js';
import { ADMIN_TOKEN, AdminTokenGuard } from './admin-token.guard.js';
import { AccountSyncEvent, AccountSyncLog } from './account-sync.event.js';
import { AccountsController } from './accounts.controller.js';
import { DailyDigestEvent } from './daily-digest.event.js';
import { DigestScheduler } from './digest.scheduler.js';
import { EmailNotificationEvent } from './email-notification.event.js';
import { QUEUE_REPORT, QueueReportEvent } from './queue-report.event.js';
import { FailedEventsController } from './failed-events.controller.js';
import { HealthController } from './health.controller.js';
import { JobsController } from './jobs.controller.js';
import { MetricsController } from './metrics.controller.js';
import { MailService } from './mail.service.js';
import { NotificationsController } from './notifications.controller.js';
import { PARTNER_API_LIMITER, PartnerApiService } from './partner-api.service.js';
import { QueuesController } from './queues.controller.js';
import { ReportExportEvent } from './report-export.event.js';
import { WebhookDeliveryEvent } from './webhook-delivery.event.js';
import { WebhooksController } from './webhooks.controller.js';
import { WorkersController } from './workers.controller.js';

export interface SampleAppOptions {
  /** SQLite file of the queues. Default: $WORKERS_DB, else sample-workers.sqlite in the working directory. */
  database?: string;
  /**
   * A PostgreSQL or MySQL/MariaDB server instead of SQLite (postgres://… or mysql://…). Default:
   * $WORKERS_DATABASE_URL. The queue tables are created by the package's migrations at startup.
   */
  databaseUrl?: string;
  /** Poll the queues in this process. Default true. */
  autoStart?: boolean;
  /** Run the digest cron in this process. Default true. */
  digestCron?: boolean;
  /** Schedule the recurring queue report (dispatched by one replica per slot). Default true. */
  queueReport?: boolean;
  /**
   * The bearer token of the operator endpoints (POST /workers/run, /failed-events, cancelling).
   * Default: $SAMPLE_ADMIN_TOKEN, else a random one that `npm run sample` prints at startup.
   */
  adminToken?: string;
}

function sampleDatabase(options: SampleAppOptions): WorkerModuleOptions['database'] {
  const url = options.databaseUrl ?? process.env.WORKERS_DATABASE_URL;
  if (!url) return { database: options.database ?? process.env.WORKERS_DB ?? 'sample-workers.sqlite' };
  const scheme = new URL(url).protocol.replace(':', '');
  const type =
    scheme === 'postgres' || scheme === 'postgresql' ? 'postgres' : scheme === 'mariadb' ? 'mariadb' : 'mysql';
  return { type, url, migrationsRun: true };
}

@Module({})
export class AppModule {
  static register(options: SampleAppOptions = {}): DynamicModule {
    const adminToken = options.adminToken ?? process.env.SAMPLE_ADMIN_TOKEN ?? randomBytes(18).toString('base64url');
    const providers: Provider[] = [
      MailService,
      PartnerApiService,
      AccountSyncLog,
      AdminTokenGuard,
      { provide: ADMIN_TOKEN, useValue: adminToken },
    ];
    if (options.digestCron ?? true) providers.push(DigestScheduler);
    return {
      module: AppModule,
      imports: [
        // For DigestScheduler's @Cron(); WorkerModule's polling intervals join this SchedulerRegistry.
        ScheduleModule.forRoot(),
        WorkerModule.forRoot({
          database: sampleDatabase(options),
          queues: {
            'email-queue': { retries: 5, runAfterSeconds: 30, concurrency: 4, pollIntervalMs: 500 },
            'maintenance-queue': { retries: 2 },
            // Partners' endpoints fail now and then: 3 attempts, 2 s apart, then the failed store. At
            // most 5 calls a second over every replica, shared with POST /webhooks/now.
            'webhook-queue': { retries: 3, runAfterSeconds: 2, concurrency: 5, rateLimit: PARTNER_API_LIMITER },
            // At most one CRM sync per user at a time (the key is the user id), 8 at once in all.
            'account-sync-queue': { concurrency: 4, globalConcurrency: 8, keyConcurrency: 1 },
            // Exports are looked up later (GET /jobs/:id): completed ones are kept a day, at most 1,000.
            'report-queue': { keepCompleted: { maxAgeSeconds: 86_400, maxCount: 1000 } },
          },
          // Listed although @QueueEvent() registers them: a worker process then knows every event
          // it may find in the table, whatever this process happened to import.
          events: [
            EmailNotificationEvent,
            DailyDigestEvent,
            QueueReportEvent,
            WebhookDeliveryEvent,
            ReportExportEvent,
            AccountSyncEvent,
          ],
          // Named rate limiters: queues name them (rateLimit above) and code takes from them (WorkerRateLimiter).
          rateLimits: { [PARTNER_API_LIMITER]: { limit: 5, intervalSeconds: 1 } },
          recurring: (options.queueReport ?? true) ? [QUEUE_REPORT] : [],
          autoStart: options.autoStart ?? true,
          // Leases renewed every second: running events' progress (GET /jobs/:id) is at most a second old.
          heartbeatSeconds: 1,
        }),
        // GET /health/workers answers 503 past these.
        WorkerHealthModule.register({ maxFailed: 100, maxOldestDueAgeSeconds: 300 }),
        // GET /metrics; a registry per application instance (prom-client's global one works too).
        WorkerMetricsModule.register({ registry: new Registry() }),
      ],
      controllers: [
        HealthController,
        WorkersController,
        NotificationsController,
        WebhooksController,
        FailedEventsController,
        MetricsController,
        JobsController,
        AccountsController,
        QueuesController,
      ],
      providers,
    };
  }
}
