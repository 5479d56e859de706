/**
 * A larascript-events style storage of one's own, in memory: an IWorkerRepository with only
 * getWorkers(), its models and a creator (the "Create Worker Repository" of the original API). Rows
 * get ids in the order they are first saved.
 */
import type { IWorkerAttributes, IWorkerCreator, IWorkerModel, IWorkerRepository } from '../../lib/index.js';

export interface PlainStore {
  pending: PlainWorkerModel[];
  failed: PlainWorkerModel[];
  nextId: number;
}

export function plainStore(): PlainStore {
  return { pending: [], failed: [], nextId: 1 };
}

export class PlainWorkerModel implements IWorkerModel {
  constructor(
    private readonly store: PlainStore,
    private readonly target: 'pending' | 'failed',
    private data: IWorkerAttributes | null,
  ) {}

  async createWorkerData(data: IWorkerAttributes): Promise<void> {
    this.data = data;
    await this.saveWorkerData();
  }

  async updateWorkerData(data: IWorkerAttributes): Promise<void> {
    this.data = data;
    await this.saveWorkerData();
  }

  getWorkerData<T extends IWorkerAttributes = IWorkerAttributes>(): T | null {
    return this.data as T | null;
  }

  async saveWorkerData(): Promise<void> {
    if (this.data && this.data.id === undefined) this.data = { ...this.data, id: String(this.store.nextId++) };
    if (!this.store[this.target].includes(this)) this.store[this.target].push(this);
  }

  async deleteWorkerData(): Promise<void> {
    this.store[this.target] = this.store[this.target].filter((model) => model !== this);
  }
}

export class PlainWorkerRepository implements IWorkerRepository {
  constructor(private readonly store: PlainStore) {}

  async getWorkers(): Promise<IWorkerModel[]> {
    return [...this.store.pending];
  }
}

export class PlainWorkerCreator implements IWorkerCreator {
  constructor(private readonly store: PlainStore) {}

  createWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return new PlainWorkerModel(this.store, 'pending', data);
  }

  createFailedWorkerModel(data: IWorkerAttributes): IWorkerModel {
    return new PlainWorkerModel(this.store, 'failed', data);
  }
}
