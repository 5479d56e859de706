import type { EntityManager } from 'typeorm';
import type { IWorkerAttributes } from './worker-attributes.interface.js';
import type { IWorkerModel } from './worker-model.interface.js';

/** Builds (unsaved) models for the pending store and for the failed store. */
export interface IWorkerCreator {
  createWorkerModel(data: IWorkerAttributes): IWorkerModel;
  createFailedWorkerModel(data: IWorkerAttributes): IWorkerModel;
}

export type IWorkerCreatorConstructor = new (...args: never[]) => IWorkerCreator;

/** The clock a row store stamps new rows with (created, due): the database's, as this process sees it. */
export interface IWorkerRowClock {
  /** Measures the clock again when the last measurement is old (through `manager` when given). */
  sync(manager?: EntityManager): Promise<void>;
  /** The clock's time now (epoch ms), from the last measurement. */
  now(): number;
  /** sync(), then now(). */
  current(manager?: EntityManager): Promise<number>;
}

/** A new row as a row store stored it. */
export interface StoredRow {
  id: string;
  /** False when its unique key was taken: nothing was inserted and `id` is the row holding the key. */
  inserted: boolean;
}

/**
 * What a creator offers beyond larascript-events' two methods when it stores the rows itself (as
 * TypeOrmWorkerCreator does): bulk inserts, inserts within a caller's transaction, unique keys and
 * the database's clock. EventService and the recurring scheduler detect it once (isWorkerRowStore)
 * when the creator is given; a creator without it still dispatches through its models'
 * saveWorkerData(), one row at a time, without those features.
 */
export interface IWorkerRowStore extends IWorkerCreator {
  /** The clock new rows are stamped with (see IWorkerRowClock). */
  readonly clock: IWorkerRowClock;
  /** True when a pending row's uniqueKey is enforced (insertModel adopts the row holding a taken key). */
  readonly enforcesUniqueKeys: boolean;
  /**
   * Stores a model this creator built (createWorkerModel) as a new pending row, through `manager`:
   * a caller's transaction, or none for a row committed on its own. A taken unique key is enforced:
   * the row holding it is adopted (`inserted: false`) and nothing is stored.
   */
  insertModel(model: IWorkerModel, manager?: EntityManager): Promise<StoredRow>;
  /**
   * Stores models this creator built (without unique keys) as new pending rows, all or none, in as
   * few statements as the database allows: in the caller's transaction with `manager`, else in one
   * of its own. Resolves to their ids in order.
   */
  insertModels(models: IWorkerModel[], manager?: EntityManager): Promise<string[]>;
  /** insertModels() straight from the rows' attributes, without a model each (bulk dispatch). */
  insertNewRows(rows: IWorkerAttributes[], manager?: EntityManager): Promise<string[]>;
  /**
   * Stores a keyed model as a throttled dispatch (`throttleSeconds`): the first of its key in a
   * period of `periodMs` is inserted, later ones in the period resolve to its id (`inserted: false`),
   * whatever became of it. Optional: dispatch refuses throttleSeconds on a store without it.
   */
  insertThrottled?(model: IWorkerModel, periodMs: number, manager?: EntityManager): Promise<StoredRow>;
  /**
   * Stores a keyed model as a debounced dispatch (`debounceSeconds`): a waiting event of its key
   * takes its payload and due time and keeps its id (`inserted: false`); a running one gives up the
   * key to a new event. Optional: dispatch refuses debounceSeconds on a store without it.
   */
  insertDebounced?(model: IWorkerModel, manager?: EntityManager): Promise<StoredRow>;
}

/** Whether `creator` offers IWorkerRowStore: told by its members, not by its class. */
export function isWorkerRowStore(creator: IWorkerCreator | undefined): creator is IWorkerRowStore {
  if (!creator) return false;
  const candidate = creator as Partial<Record<keyof IWorkerRowStore, unknown>>;
  // `in`, not a read: reading the clock may open it, and detection must not touch the database.
  return (
    'clock' in creator &&
    'enforcesUniqueKeys' in creator &&
    typeof candidate.insertModel === 'function' &&
    typeof candidate.insertModels === 'function' &&
    typeof candidate.insertNewRows === 'function'
  );
}
