import { type DynamicModule, Module } from '@nestjs/common';
import { WorkerCoreModule } from './worker-core.module.js';
import type { WORKER_ASYNC_OPTIONS_TYPE, WORKER_OPTIONS_TYPE } from './worker.module-definition.js';

/**
 * Durable background work on a database: `WorkerModule.forRoot()` (embedded SQLite by default) or
 * `forRootAsync({ useFactory | useClass | useExisting, inject, imports })`. Provides WorkerService and
 * EventService, globally unless `isGlobal: false`. The providers live in WorkerCoreModule, which this
 * module imports and re-exports (so a non-global instance is seen by the module importing it); see
 * there for several instances in one application.
 */
@Module({})
export class WorkerModule {
  static forRoot(options: typeof WORKER_OPTIONS_TYPE = {}): DynamicModule {
    return { module: WorkerModule, imports: [WorkerCoreModule.forRoot(options)], exports: [WorkerCoreModule] };
  }

  static forRootAsync(options: typeof WORKER_ASYNC_OPTIONS_TYPE): DynamicModule {
    return { module: WorkerModule, imports: [WorkerCoreModule.forRootAsync(options)], exports: [WorkerCoreModule] };
  }
}
