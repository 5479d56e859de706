import type { IWorkerAttributes } from './worker-attributes.interface.js';
import type { IWorkerModel } from './worker-model.interface.js';

/** Builds (unsaved) models for the pending store and for the failed store. */
export interface IWorkerCreator {
  createWorkerModel(data: IWorkerAttributes): IWorkerModel;
  createFailedWorkerModel(data: IWorkerAttributes): IWorkerModel;
}

export type IWorkerCreatorConstructor = new (...args: never[]) => IWorkerCreator;
