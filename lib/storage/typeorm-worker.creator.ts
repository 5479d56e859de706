import type { DataSource, EntityManager } from 'typeorm';
import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';
import type { IWorkerCreator } from '../interfaces/worker-creator.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import { type DatabaseClock, databaseClock } from './database-clock.js';
import { FailedWorkerEntity, WorkerEntity } from './entities/worker.entity.js';
import { databaseRowOf, insertPendingRows, storedFieldsOf, TypeOrmWorkerModel } from './typeorm-worker.model.js';

/** The seed's IWorkerCreator on TypeORM: unsaved models for the pending and the failed table. */
export class TypeOrmWorkerCreator implements IWorkerCreator {
  constructor(private readonly dataSource: DataSource) {}

  /** The database's clock, which the rows' times (created, due) are stamped with (see DatabaseClock). */
  get clock(): DatabaseClock {
    return databaseClock(this.dataSource);
  }

  createWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return this.modelFor(WorkerEntity, data);
  }

  createFailedWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return this.modelFor(FailedWorkerEntity, { ...data, failedAt: data.failedAt ?? new Date() });
  }

  /**
   * Stores new pending rows straight from their attributes, without a model each (bulk dispatch), in
   * one transaction (the caller's with `manager`); resolves to their ids in order.
   */
  insertNewRows(rows: IWorkerAttributes[], manager?: EntityManager): Promise<string[]> {
    return insertPendingRows(
      this.dataSource,
      rows.map((data) => databaseRowOf(this.dataSource, WorkerEntity, storedFieldsOf(data, true))),
      manager,
    );
  }

  private modelFor(
    table: typeof WorkerEntity | typeof FailedWorkerEntity,
    data: IWorkerAttributes,
  ): TypeOrmWorkerModel {
    const model = new TypeOrmWorkerModel(this.dataSource, table);
    model.setData(data, { asNewRow: true });
    return model;
  }
}
