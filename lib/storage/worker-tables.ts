import type { DataSource } from 'typeorm';
import { FailedWorkerEntity, WorkerEntity, WorkerScheduleEntity } from './entities/worker.entity.js';

/** The queue tables as they are spelled in raw SQL on this DataSource (schema-qualified, quoted). */
export interface WorkerTables {
  pending: string;
  failed: string;
  /** The recurring events' last dispatched slots. */
  schedules: string;
}

const tablesBySource = new WeakMap<DataSource, WorkerTables>();

/** Read from the metadata once per DataSource: dispatches and claims use them on every call. */
export function workerTables(dataSource: DataSource): WorkerTables {
  let tables = tablesBySource.get(dataSource);
  if (!tables) tablesBySource.set(dataSource, (tables = readTables(dataSource)));
  return tables;
}

function readTables(dataSource: DataSource): WorkerTables {
  const quoted = (entity: typeof WorkerEntity | typeof FailedWorkerEntity | typeof WorkerScheduleEntity): string =>
    dataSource
      .getMetadata(entity)
      .tablePath.split('.')
      .map((part) => dataSource.driver.escape(part))
      .join('.');
  return { pending: quoted(WorkerEntity), failed: quoted(FailedWorkerEntity), schedules: quoted(WorkerScheduleEntity) };
}
