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

/**
 * The queue tables (as TypeORM paths) that do not exist on the DataSource's database. TypeORM's
 * hasTable() asks the catalog of each database (information_schema, sqlite_master) for the
 * schema-qualified name, so a table of the same name in another schema does not count.
 */
export async function missingWorkerTables(dataSource: DataSource): Promise<string[]> {
  const queryRunner = dataSource.createQueryRunner();
  try {
    const missing: string[] = [];
    for (const entity of [WorkerEntity, FailedWorkerEntity, WorkerScheduleEntity]) {
      const { tablePath } = dataSource.getMetadata(entity);
      if (!(await queryRunner.hasTable(tablePath))) missing.push(tablePath);
    }
    return missing;
  } finally {
    await queryRunner.release();
  }
}
