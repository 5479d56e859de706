import {
  type DynamicModule,
  Inject,
  Injectable,
  Logger,
  Module,
  type OnApplicationShutdown,
  type Provider,
} from '@nestjs/common';
import { DiscoveryModule, ModuleRef } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import { EventService } from './dispatch/event.service.js';
import type { IWorkerCreator } from './interfaces/worker-creator.interface.js';
import type { WorkerModuleExtras, WorkerProviderOverride } from './interfaces/worker-module-options.interface.js';
import type { IWorkerRepository } from './interfaces/worker-repository.interface.js';
import { WorkerService } from './processing/worker.service.js';
import { TypeOrmWorkerCreator } from './storage/typeorm-worker.creator.js';
import { TypeOrmWorkerRepository } from './storage/typeorm-worker.repository.js';
import { assertUsableDataSource, isOpenedByWorkers, openWorkerDataSource } from './storage/worker-data-source.js';
import { knownQueueNames, type ResolvedWorkerConfig, resolveWorkerConfig } from './worker.config.js';
import { WORKER_CONFIG, WORKER_CREATOR, WORKER_DATA_SOURCE, WORKER_REPOSITORY } from './worker.constants.js';
import {
  ConfigurableWorkerModule,
  WORKER_ASYNC_OPTIONS_TYPE,
  WORKER_MODULE_OPTIONS,
  WORKER_OPTIONS_TYPE,
} from './worker.module-definition.js';
import { WorkerScheduler } from './worker.scheduler.js';
import { WorkerStartup } from './worker-startup.js';
import { WorkerExplorer } from './worker.explorer.js';
import { FailedWorkerService } from './failed/failed-worker.service.js';
import { WorkerLifecycle } from './lifecycle/worker-lifecycle.js';
import { RecurringEventScheduler } from './recurring/recurring-event.scheduler.js';

/** Closes the DataSource the module opened, after the workers have drained; an application's own stays open. */
@Injectable()
class WorkerDataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(WORKER_DATA_SOURCE) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (isOpenedByWorkers(this.dataSource) && this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}

/** The application's DataSource (by token, or given in the options), else one the module opens. */
function dataSourceProvider(extras: WorkerModuleExtras): Provider {
  if (extras.dataSourceToken !== undefined) {
    return {
      provide: WORKER_DATA_SOURCE,
      useFactory: (dataSource: DataSource) => assertUsableDataSource(dataSource),
      inject: [extras.dataSourceToken],
    };
  }
  return {
    provide: WORKER_DATA_SOURCE,
    useFactory: async (config: ResolvedWorkerConfig, startup: WorkerStartup) => {
      if (config.dataSource) return assertUsableDataSource(config.dataSource);
      const dataSource = await openWorkerDataSource(config.database);
      startup.opened(() => dataSource.isInitialized && dataSource.destroy());
      return dataSource;
    },
    inject: [WORKER_CONFIG, WorkerStartup],
  };
}

function overridable<T>(token: string, override: WorkerProviderOverride<T> | undefined, fallback: Provider): Provider {
  return override ? ({ provide: token, ...override } as Provider) : fallback;
}

function workerProviders(extras: WorkerModuleExtras): Provider[] {
  return [
    { provide: WORKER_CONFIG, useFactory: resolveWorkerConfig, inject: [WORKER_MODULE_OPTIONS] },
    { provide: WorkerStartup, useFactory: () => new WorkerStartup() },
    dataSourceProvider(extras),
    overridable<IWorkerCreator>(WORKER_CREATOR, extras.workerCreator, {
      provide: WORKER_CREATOR,
      useFactory: (dataSource: DataSource) => new TypeOrmWorkerCreator(dataSource),
      inject: [WORKER_DATA_SOURCE],
    }),
    overridable<IWorkerRepository>(WORKER_REPOSITORY, extras.workerRepository, {
      provide: WORKER_REPOSITORY,
      useFactory: (dataSource: DataSource) => new TypeOrmWorkerRepository(dataSource),
      inject: [WORKER_DATA_SOURCE],
    }),
    {
      provide: WorkerLifecycle,
      useFactory: (config: ResolvedWorkerConfig) => new WorkerLifecycle(config.logger),
      inject: [WORKER_CONFIG],
    },
    {
      provide: EventService,
      useFactory: (
        config: ResolvedWorkerConfig,
        creator: IWorkerCreator,
        moduleRef: ModuleRef,
        lifecycle: WorkerLifecycle,
        startup: WorkerStartup,
      ) =>
        // Registering the events can fail (two classes of one name) after the DataSource opened.
        startup.step(
          () =>
            new EventService({
              workerCreator: creator,
              events: config.events,
              resolveDependency: (token) => moduleRef.get(token as string, { strict: false }),
              retriesFor: (queueName) => config.queueOptions(queueName).retries,
              lifecycle,
              maxPayloadBytes: config.maxPayloadBytes,
            }),
        ),
      inject: [WORKER_CONFIG, WORKER_CREATOR, ModuleRef, WorkerLifecycle, WorkerStartup],
    },
    {
      provide: FailedWorkerService,
      useFactory: (dataSource: DataSource) => new FailedWorkerService(dataSource),
      inject: [WORKER_DATA_SOURCE],
    },
    {
      provide: WorkerService,
      useFactory: (
        config: ResolvedWorkerConfig,
        repository: IWorkerRepository,
        creator: IWorkerCreator,
        eventService: EventService,
        lifecycle: WorkerLifecycle,
      ) => {
        const workerService = new WorkerService();
        workerService.setLogger(config.logger ?? new Logger(WorkerService.name));
        workerService.setEventService(eventService);
        workerService.setWorkerRepository(repository);
        workerService.setWorkerCreator(creator);
        workerService.configure({
          leaseSeconds: config.leaseSeconds,
          heartbeatSeconds: config.heartbeatSeconds,
          concurrencyFor: (queueName) => config.queueOptions(queueName).concurrency,
          batchSizeFor: (queueName) => config.queueOptions(queueName).batchSize,
          knownQueues: () => knownQueueNames(config, eventService),
          lifecycle,
        });
        return workerService;
      },
      inject: [WORKER_CONFIG, WORKER_REPOSITORY, WORKER_CREATOR, EventService, WorkerLifecycle],
    },
    WorkerScheduler,
    RecurringEventScheduler,
    WorkerExplorer,
    WorkerDataSourceCloser,
  ];
}

const EXPORTS = [
  WorkerService,
  EventService,
  FailedWorkerService,
  WorkerLifecycle,
  RecurringEventScheduler,
  WORKER_CONFIG,
  WORKER_DATA_SOURCE,
  WORKER_REPOSITORY,
  WORKER_CREATOR,
];

function withWorkerProviders(definition: DynamicModule, extras: WorkerModuleExtras): DynamicModule {
  return {
    ...definition,
    imports: [...(definition.imports ?? []), DiscoveryModule],
    providers: [...(definition.providers ?? []), ...workerProviders(extras)],
    exports: [...(definition.exports ?? []), ...EXPORTS],
  };
}

/**
 * Durable background work on a database: `WorkerModule.forRoot()` (embedded SQLite by default) or
 * `forRootAsync({ useFactory | useClass | useExisting, inject, imports })`. Provides WorkerService and
 * EventService, globally unless `isGlobal: false`.
 */
@Module({})
export class WorkerModule extends ConfigurableWorkerModule {
  static override forRoot(options: typeof WORKER_OPTIONS_TYPE = {}): DynamicModule {
    return withWorkerProviders(super.forRoot(options), options);
  }

  static override forRootAsync(options: typeof WORKER_ASYNC_OPTIONS_TYPE): DynamicModule {
    return withWorkerProviders(super.forRootAsync(options), options);
  }
}
