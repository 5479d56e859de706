import { Logger, type Provider, type Type } from '@nestjs/common';
import { ModuleRef, ModulesContainer } from '@nestjs/core';
import type { DataSource } from 'typeorm';
import { DuplicateWorkerModuleError } from './errors/startup.error.js';
import { EventService } from './dispatch/event.service.js';
import { FailedWorkerService } from './failed/failed-worker.service.js';
import { WorkerJobsService } from './jobs/worker-jobs.service.js';
import type { IWorkerCreator } from './interfaces/worker-creator.interface.js';
import type {
  WorkerModuleExtras,
  WorkerModuleOptions,
  WorkerProviderOverride,
} from './interfaces/worker-module-options.interface.js';
import type { IWorkerRepository } from './interfaces/worker-repository.interface.js';
import { WorkerLifecycle } from './lifecycle/worker-lifecycle.js';
import { WorkerService } from './processing/worker.service.js';
import { RecurringEventScheduler } from './recurring/recurring-event.scheduler.js';
import { RetentionPruner } from './retention/retention.pruner.js';
import { TypeOrmWorkerCreator } from './storage/typeorm-worker.creator.js';
import { TypeOrmWorkerRepository } from './storage/typeorm-worker.repository.js';
import { assertUsableDataSource, openWorkerDataSource } from './storage/worker-data-source.js';
import { knownQueueNames, type ResolvedWorkerConfig, resolveWorkerConfig } from './worker.config.js';
import { WORKER_CONFIG, WORKER_CREATOR, WORKER_DATA_SOURCE, WORKER_REPOSITORY } from './worker.constants.js';
import { WorkerDataSourceCloser } from './worker-data-source.closer.js';
import { WorkerExplorer } from './worker.explorer.js';
import { WORKER_MODULE_OPTIONS } from './worker.module-definition.js';
import { WorkerScheduler } from './worker.scheduler.js';
import { WorkerStartup } from './worker-startup.js';

/**
 * The validated configuration. Resolved first (everything else depends on it), so a second global
 * instance of the core module is refused here, before any DataSource opens.
 */
function configProvider(coreModule: Type): Provider {
  return {
    provide: WORKER_CONFIG,
    useFactory: (options: WorkerModuleOptions | undefined, modules: ModulesContainer) => {
      const globalInstances = [...modules.values()].filter(
        (module) => module.metatype === coreModule && module.isGlobal,
      ).length;
      if (globalInstances > 1) throw new DuplicateWorkerModuleError(globalInstances);
      return resolveWorkerConfig(options);
    },
    inject: [WORKER_MODULE_OPTIONS, ModulesContainer],
  };
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

/** The provider given in the extras for `token` (its `provide` set here), else the built-in one. */
function overridable<T>(token: string, override: WorkerProviderOverride<T> | undefined, fallback: Provider): Provider {
  return override ? ({ provide: token, ...override } as Provider) : fallback;
}

function creatorProvider(extras: WorkerModuleExtras): Provider {
  return overridable<IWorkerCreator>(WORKER_CREATOR, extras.workerCreator, {
    provide: WORKER_CREATOR,
    useFactory: (dataSource: DataSource) => new TypeOrmWorkerCreator(dataSource),
    inject: [WORKER_DATA_SOURCE],
  });
}

function repositoryProvider(extras: WorkerModuleExtras): Provider {
  return overridable<IWorkerRepository>(WORKER_REPOSITORY, extras.workerRepository, {
    provide: WORKER_REPOSITORY,
    useFactory: (dataSource: DataSource) => new TypeOrmWorkerRepository(dataSource),
    inject: [WORKER_DATA_SOURCE],
  });
}

const lifecycleProvider: Provider = {
  provide: WorkerLifecycle,
  useFactory: (config: ResolvedWorkerConfig) => new WorkerLifecycle(config.logger),
  inject: [WORKER_CONFIG],
};

const eventServiceProvider: Provider = {
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
};

const failedServiceProvider: Provider = {
  provide: FailedWorkerService,
  useFactory: (dataSource: DataSource) => new FailedWorkerService(dataSource),
  inject: [WORKER_DATA_SOURCE],
};

const jobsServiceProvider: Provider = {
  provide: WorkerJobsService,
  useFactory: (dataSource: DataSource, config: ResolvedWorkerConfig) =>
    new WorkerJobsService(dataSource, { leaseSeconds: config.leaseSeconds }),
  inject: [WORKER_DATA_SOURCE, WORKER_CONFIG],
};

/** WorkerService wired as larascript-events wires it (the setters), then configured from the options. */
const workerServiceProvider: Provider = {
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
      maxPayloadBytes: config.maxPayloadBytes,
      keepCompletedFor: (queueName) => config.queueOptions(queueName).keepCompleted,
      flowFor: (queueName) => ({ limits: config.queueOptions(queueName), rateLimits: config.rateLimits }),
    });
    return workerService;
  },
  inject: [WORKER_CONFIG, WORKER_REPOSITORY, WORKER_CREATOR, EventService, WorkerLifecycle],
};

/** The providers of one core module instance; `coreModule` is its class (to count its global instances). */
export function createWorkerProviders(extras: WorkerModuleExtras, coreModule: Type): Provider[] {
  return [
    configProvider(coreModule),
    { provide: WorkerStartup, useFactory: () => new WorkerStartup() },
    dataSourceProvider(extras),
    creatorProvider(extras),
    repositoryProvider(extras),
    lifecycleProvider,
    eventServiceProvider,
    failedServiceProvider,
    jobsServiceProvider,
    workerServiceProvider,
    WorkerScheduler,
    RecurringEventScheduler,
    RetentionPruner,
    WorkerExplorer,
    WorkerDataSourceCloser,
  ];
}

/** What the core module exports (to the whole application when global). */
export const WORKER_EXPORTS = [
  WorkerService,
  EventService,
  FailedWorkerService,
  WorkerJobsService,
  WorkerLifecycle,
  RecurringEventScheduler,
  RetentionPruner,
  WORKER_CONFIG,
  WORKER_DATA_SOURCE,
  WORKER_REPOSITORY,
  WORKER_CREATOR,
];
