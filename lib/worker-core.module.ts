import { type DynamicModule, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import type { WorkerModuleExtras } from './interfaces/worker-module-options.interface.js';
import {
  ConfigurableWorkerModule,
  WORKER_ASYNC_OPTIONS_TYPE,
  WORKER_OPTIONS_TYPE,
} from './worker.module-definition.js';
import { createWorkerProviders, WORKER_EXPORTS } from './worker.providers.js';

/**
 * Owns the providers of one WorkerModule instance (its configuration, DataSource, repository, creator,
 * WorkerService, EventService, pollers), as TypeOrmCoreModule does for TypeOrmModule. Global unless
 * `isGlobal: false`; imported only through WorkerModule.forRoot() / forRootAsync().
 *
 * Several instances in one application: each forRoot() value is an instance with providers of its
 * own (its database, its pollers: interval names of a queue polled twice get "#2", "#3"…), and the
 * same value imported by several modules is one instance. At most one of them may be global (the
 * default): a second global one is refused at startup with DuplicateWorkerModuleError, since every
 * injection of WorkerService or EventService would get one of the two at random. The others are
 * told apart by the Nest module that imports them (`isGlobal: false`: only that module and the
 * modules it exports WorkerModule to see them), not by a name or per-instance tokens.
 */
@Module({})
export class WorkerCoreModule extends ConfigurableWorkerModule {
  static override forRoot(options: typeof WORKER_OPTIONS_TYPE = {}): DynamicModule {
    return withWorkerProviders(super.forRoot(options), options);
  }

  static override forRootAsync(options: typeof WORKER_ASYNC_OPTIONS_TYPE): DynamicModule {
    return withWorkerProviders(super.forRootAsync(options), options);
  }
}

function withWorkerProviders(definition: DynamicModule, extras: WorkerModuleExtras): DynamicModule {
  return {
    ...definition,
    imports: [...(definition.imports ?? []), DiscoveryModule],
    providers: [...(definition.providers ?? []), ...createWorkerProviders(extras, WorkerCoreModule)],
    exports: [...(definition.exports ?? []), ...WORKER_EXPORTS],
  };
}
