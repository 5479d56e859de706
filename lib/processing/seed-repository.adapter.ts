import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type {
  ClaimRequest,
  IWorkerQueueRepository,
  IWorkerRepository,
  QueueHealth,
  RetryRequest,
} from '../interfaces/worker-repository.interface.js';

export function isQueueRepository(repository: IWorkerRepository): repository is IWorkerQueueRepository {
  const candidate = repository as Partial<IWorkerQueueRepository>;
  return [
    'claimWorkers',
    'countDueWorkers',
    'completeWorker',
    'retryWorker',
    'failWorker',
    'renewLeases',
    'releaseWorkers',
    'getQueueHealth',
  ].every((method) => typeof candidate[method as keyof IWorkerQueueRepository] === 'function');
}

/**
 * Runs larascript-events' plain repositories (only `getWorkers()` and the model methods): no leases in the
 * database and no atomic failed move, so one worker process per queue. Within the process a claimed
 * row is held until its outcome is written, so a claim never takes a row whose outcome is still
 * being recorded. A retried row's `updatedAt` is set to when it is due again, the one attribute of
 * larascript-events that can carry it.
 */
export class SeedRepositoryAdapter implements IWorkerQueueRepository {
  /** Jobs claimed in this process whose outcome is not written yet, by id (or by model, for rows without one). */
  private readonly held = new Set<string | IWorkerModel>();

  constructor(readonly repository: IWorkerRepository) {}

  getWorkers(): Promise<IWorkerModel[]> {
    return this.repository.getWorkers();
  }

  async claimWorkers(request: ClaimRequest): Promise<IWorkerModel[]> {
    // Held ones filtered out again after the await (a claim beside this one, two runWorker calls of
    // one queue, may have taken some meanwhile), and all of them held before the next await.
    const due = (await this.dueWorkers(request.queueName, request.dueBy))
      .filter(({ model, data }) => !this.held.has(data.id ?? model))
      .slice(0, request.limit);
    for (const { model, data } of due) this.held.add(data.id ?? model);
    for (const { model, data } of due) {
      await model.updateWorkerData({ ...data, attempts: data.attempts + 1, updatedAt: new Date() });
    }
    return due.map(({ model }) => model);
  }

  /** Writes a claimed row's outcome, then lets claims see the row again (if it is still there). */
  private async settle(model: IWorkerModel, write: () => Promise<void>): Promise<void> {
    const key = model.getWorkerData()?.id ?? model;
    try {
      await write();
    } finally {
      this.held.delete(key);
    }
  }

  /** Due rows that no claim of this process holds: a held row is already counted in its batch. */
  async countDueWorkers(queueName: string, dueBy: Date, limit = Number.MAX_SAFE_INTEGER): Promise<number> {
    return Math.min((await this.dueWorkers(queueName, dueBy)).length, limit);
  }

  completeWorker(model: IWorkerModel): Promise<void> {
    return this.settle(model, () => model.deleteWorkerData());
  }

  retryWorker(model: IWorkerModel, retry: RetryRequest): Promise<void> {
    return this.settle(model, async () => {
      const data = model.getWorkerData();
      if (data)
        await model.updateWorkerData({
          ...data,
          error: retry.error,
          retries: retry.retries,
          updatedAt: retry.availableAt,
        });
    });
  }

  failWorker(model: IWorkerModel, failed: IWorkerModel): Promise<void> {
    return this.settle(model, async () => {
      await failed.saveWorkerData();
      await model.deleteWorkerData();
    });
  }

  /** larascript-events' rows have no leases to renew. */
  async renewLeases(): Promise<void> {}

  async releaseWorkers(models: IWorkerModel[]): Promise<void> {
    for (const model of models) {
      await this.settle(model, async () => {
        const data = model.getWorkerData();
        if (data) await model.updateWorkerData({ ...data, attempts: data.attempts - 1 });
      });
    }
  }

  /**
   * Rows of the queue never tried, or whose retry time (kept in updatedAt) has come, that no claim
   * holds; oldest first.
   */
  private async dueWorkers(queueName: string, dueBy: Date) {
    return (await this.repository.getWorkers())
      .map((model) => ({ model, data: model.getWorkerData() }))
      .filter(
        (entry): entry is { model: IWorkerModel; data: IWorkerAttributes } =>
          entry.data !== null &&
          entry.data.queueName === queueName &&
          (entry.data.attempts === 0 || entry.data.updatedAt <= dueBy) &&
          !this.held.has(entry.data.id ?? entry.model),
      )
      .sort((a, b) => a.data.createdAt.getTime() - b.data.createdAt.getTime());
  }

  async getQueueHealth(queueNames?: string[]): Promise<QueueHealth[]> {
    const counts = new Map<string, number>();
    for (const model of await this.repository.getWorkers()) {
      const queueName = model.getWorkerData()?.queueName;
      if (queueName) counts.set(queueName, (counts.get(queueName) ?? 0) + 1);
    }
    return (queueNames ?? [...counts.keys()].sort()).map((queueName) => {
      const active = counts.get(queueName) ?? 0;
      return { queueName, active, failed: 0, total: active };
    });
  }
}
