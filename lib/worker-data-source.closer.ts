import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { isOpenedByWorkers } from './storage/worker-data-source.js';
import { WORKER_DATA_SOURCE } from './worker.constants.js';

/**
 * Closes the DataSource the module opened, after the workers have drained (they stop in
 * beforeApplicationShutdown, this runs in onApplicationShutdown); an application's own stays open.
 */
@Injectable()
export class WorkerDataSourceCloser implements OnApplicationShutdown {
  constructor(@Inject(WORKER_DATA_SOURCE) private readonly dataSource: DataSource) {}

  async onApplicationShutdown(): Promise<void> {
    if (isOpenedByWorkers(this.dataSource) && this.dataSource.isInitialized) await this.dataSource.destroy();
  }
}
