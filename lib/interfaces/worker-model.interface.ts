import type { IWorkerAttributes } from './worker-attributes.interface.js';

/** One worker row with its lifecycle, as larascript-events defines it. */
export interface IWorkerModel {
  /** Sets the row's data and stores it as a new row. */
  createWorkerData(data: IWorkerAttributes): Promise<void>;
  /** Replaces the row's data and stores the change. */
  updateWorkerData(data: IWorkerAttributes): Promise<void>;
  getWorkerData<T extends IWorkerAttributes = IWorkerAttributes>(): T | null;
  /** Stores the current data: inserts an unsaved row, updates a saved one. */
  saveWorkerData(): Promise<void>;
  deleteWorkerData(): Promise<void>;
}
