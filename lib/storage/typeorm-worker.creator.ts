import type { DataSource, EntityManager } from 'typeorm';
import { WorkerError } from '../errors/worker.error.js';
import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';
import type { IWorkerRowStore, StoredRow } from '../interfaces/worker-creator.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import { rowStoreMessages } from '../worker.messages.js';
import { type DatabaseClock, databaseClock } from './database-clock.js';
import { FailedWorkerEntity, WorkerEntity } from './entities/worker.entity.js';
import { databaseRowOf, insertPendingRows, storedFieldsOf, TypeOrmWorkerModel } from './typeorm-worker.model.js';

/**
 * larascript-events' IWorkerCreator on TypeORM: unsaved models for the pending and the failed table. It
 * stores the rows itself too (IWorkerRowStore): bulk inserts, inserts within a caller's
 * transaction, unique keys, and rows stamped on the database's clock.
 */
export class TypeOrmWorkerCreator implements IWorkerRowStore {
  readonly enforcesUniqueKeys = true;

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

  async insertModel(model: IWorkerModel, manager: EntityManager = this.dataSource.manager): Promise<StoredRow> {
    const row = pendingModel(model);
    await row.insert(manager);
    return { id: row.id!, inserted: row.insertedNewRow };
  }

  async insertThrottled(model: IWorkerModel, periodMs: number, manager?: EntityManager): Promise<StoredRow> {
    const row = pendingModel(model);
    await row.insertThrottled(manager, periodMs);
    return { id: row.id!, inserted: row.insertedNewRow };
  }

  async insertDebounced(model: IWorkerModel, manager?: EntityManager): Promise<StoredRow> {
    const row = pendingModel(model);
    await row.insertDebounced(manager);
    return { id: row.id!, inserted: row.insertedNewRow };
  }

  async insertModels(models: IWorkerModel[], manager?: EntityManager): Promise<string[]> {
    const rows = models.map(pendingModel);
    await TypeOrmWorkerModel.insertMany(rows, manager);
    return rows.map((row) => row.id ?? '');
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

/** A model a TypeORM creator built, as the row store takes it back. */
function pendingModel(model: IWorkerModel): TypeOrmWorkerModel {
  if (model instanceof TypeOrmWorkerModel) return model;
  throw new WorkerError(rowStoreMessages.notATypeOrmModel);
}
