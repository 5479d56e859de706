import type { DataSource } from 'typeorm';
import { FailedWorkerEntity } from './entities/worker.entity.js';
import type { FailedRowFilter } from './worker-statements.js';

/**
 * The failed store's reads and deletes (the retries are AtomicWork in worker-statements): the SQL
 * behind FailedWorkerService, which checks its input before calling these.
 */
export class FailedStore {
  constructor(private readonly dataSource: DataSource) {}

  /** A page of the failed rows that are not soft-deleted, newest first, and how many match in all. */
  page(filter: FailedRowFilter, offset: number, limit: number): Promise<[FailedWorkerEntity[], number]> {
    const builder = this.dataSource.manager
      .createQueryBuilder(FailedWorkerEntity, 'failed')
      .where('failed.deletedAt IS NULL')
      .orderBy('failed.failedAt', 'DESC')
      .addOrderBy('failed.id', 'DESC')
      .skip(offset)
      .take(limit);
    if (filter.queueName !== undefined)
      builder.andWhere('failed.queueName = :queueName', { queueName: filter.queueName });
    if (filter.eventName !== undefined)
      builder.andWhere('failed.eventName = :eventName', { eventName: filter.eventName });
    return builder.getManyAndCount();
  }

  /** The failed row of this id, unless there is none or it is soft-deleted. */
  async find(id: string): Promise<FailedWorkerEntity | undefined> {
    const row = await this.dataSource.manager.findOneBy(FailedWorkerEntity, { id });
    return row && row.deletedAt === null ? row : undefined;
  }

  /** Deletes one failed row; resolves to whether there was one. */
  async delete(id: string): Promise<boolean> {
    const result = await this.dataSource.manager
      .createQueryBuilder()
      .delete()
      .from(FailedWorkerEntity)
      .where('id = :id', { id })
      .execute();
    return Boolean(result.affected);
  }

  /** Deletes the rows that failed before `before` (epoch ms); resolves to how many. */
  async purge(before: number): Promise<number> {
    const result = await this.dataSource.manager
      .createQueryBuilder()
      .delete()
      .from(FailedWorkerEntity)
      .where('failed_at < :before', { before })
      .execute();
    return result.affected ?? 0;
  }
}
