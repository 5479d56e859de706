import type { DataSource } from 'typeorm';
import type { IWorkerRowStore } from '../interfaces/worker-creator.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import { TypeOrmWorkerCreator } from './typeorm-worker.creator.js';
import { TypeOrmWorkerModel } from './typeorm-worker.model.js';

const stores = new WeakMap<DataSource, TypeOrmWorkerCreator>();

/**
 * The row store behind a model of this package's TypeORM tables, whichever creator built it: a
 * replaced creator that is no IWorkerRowStore but hands out TypeORM models (a wrapper, say) keeps
 * what those models can do (unique keys, a caller's transaction, bulk inserts). Undefined for any
 * other model.
 */
export function rowStoreOfModel(model: IWorkerModel): IWorkerRowStore | undefined {
  if (!(model instanceof TypeOrmWorkerModel)) return undefined;
  let store = stores.get(model.dataSource);
  if (!store) stores.set(model.dataSource, (store = new TypeOrmWorkerCreator(model.dataSource)));
  return store;
}

/** rowStoreOfModel() of a batch: the store when every model has it, else undefined. */
export function rowStoreOfModels(models: IWorkerModel[]): IWorkerRowStore | undefined {
  const store = models.length > 0 ? rowStoreOfModel(models[0]!) : undefined;
  return store && models.every((model) => rowStoreOfModel(model) === store) ? store : undefined;
}
