import type { DataSource } from 'typeorm';
import { CorruptPayloadError, FailedWorkerNotFoundError, InvalidWorkerOptionsError } from '../errors/worker.error.js';
import type {
  FailedWorkerPage,
  FailedWorkerQuery,
  FailedWorkerRecord,
} from '../interfaces/failed-workers.interface.js';
import {
  assertInteger,
  assertKnownKeys,
  assertPlainObject,
  assertStoredName,
  rowIdOf,
} from '../common/worker-options.validation.js';
import type { FailedWorkerEntity } from '../storage/entities/worker.entity.js';
import { FailedStore } from '../storage/failed-store.js';
import { type StoredWorkerFields, toAttributes } from '../storage/worker-row.js';
import type { FailedRowFilter } from '../storage/sql/failed-store.js';
import { failedMessages } from '../worker.messages.js';

export const MAX_FAILED_PAGE_SIZE = 500;
const DEFAULT_FAILED_PAGE_SIZE = 20;
const QUERY_KEYS = ['queueName', 'eventName', 'page', 'pageSize'] as const;

/**
 * The failed store, for operators: list (newest first), show, retry (back in line as a new pending
 * row, removed from the failed store in the same transaction), delete, purge. Bad input is refused
 * with a typed error before anything changes.
 */
export class FailedWorkerService {
  private readonly store: FailedStore;

  constructor(dataSource: DataSource) {
    this.store = new FailedStore(dataSource);
  }

  async list(query: FailedWorkerQuery = {}): Promise<FailedWorkerPage> {
    const raw: unknown = query;
    assertPlainObject('failed list query', raw);
    assertKnownKeys('', raw, QUERY_KEYS);
    const page = query.page ?? 1;
    const pageSize = query.pageSize ?? DEFAULT_FAILED_PAGE_SIZE;
    assertInteger('pageSize', pageSize, 1);
    if (pageSize > MAX_FAILED_PAGE_SIZE)
      throw new InvalidWorkerOptionsError('pageSize', failedMessages.pageSizeTooLarge(MAX_FAILED_PAGE_SIZE, pageSize));
    // The row offset, (page - 1) × pageSize, must stay an exact integer for the OFFSET clause.
    assertInteger('page', page, 1, Math.floor(Number.MAX_SAFE_INTEGER / pageSize));
    const [rows, total] = await this.store.page(this.filterOf(query), (page - 1) * pageSize, pageSize);
    return { items: rows.map(toRecord), total, page, pageSize };
  }

  async get(id: string): Promise<FailedWorkerRecord> {
    const row = await this.store.find(this.idOf(id));
    if (!row) throw new FailedWorkerNotFoundError(id);
    return toRecord(row);
  }

  /**
   * Puts one failed event back in line (attempts reset); throws FailedWorkerNotFoundError, changing
   * nothing, if it is not there.
   */
  async retry(id: string): Promise<void> {
    const requeued = await this.store.requeue({ id: this.idOf(id) });
    if (requeued === 0) throw new FailedWorkerNotFoundError(id);
  }

  /** Puts every failed event matching the filters back in line, in one transaction; returns how many. */
  async retryAll(filter: Pick<FailedWorkerQuery, 'queueName' | 'eventName'> = {}): Promise<number> {
    const raw: unknown = filter;
    assertPlainObject('retry filter', raw);
    assertKnownKeys('', raw, ['queueName', 'eventName']);
    return this.store.requeue(this.filterOf(filter));
  }

  async delete(id: string): Promise<void> {
    if (!(await this.store.delete(this.idOf(id)))) throw new FailedWorkerNotFoundError(id);
  }

  /** Deletes failed events that failed before `olderThan`; returns how many. */
  async purge(olderThan: Date): Promise<number> {
    if (!(olderThan instanceof Date) || Number.isNaN(olderThan.getTime())) {
      throw new InvalidWorkerOptionsError('olderThan', failedMessages.invalidOlderThan(olderThan));
    }
    return this.store.purge(olderThan.getTime());
  }

  private idOf(id: unknown): string {
    return rowIdOf(id, 'a failed event id');
  }

  private filterOf(query: FailedWorkerQuery): FailedRowFilter {
    if (query.queueName !== undefined) assertStoredName('queueName', query.queueName);
    if (query.eventName !== undefined) assertStoredName('eventName', query.eventName);
    return { queueName: query.queueName, eventName: query.eventName };
  }
}

/** A failed row as a record; a payload that no longer parses is kept as its raw text. */
function toRecord(row: FailedWorkerEntity): FailedWorkerRecord {
  const fields: StoredWorkerFields = { ...row, id: String(row.id), availableAt: row.availableAt ?? undefined };
  let attributes;
  try {
    attributes = toAttributes(fields);
  } catch (error) {
    if (!(error instanceof CorruptPayloadError)) throw error;
    attributes = { ...error.attributes, payload: error.rawPayload };
  }
  return { ...attributes, id: String(row.id), failedAt: new Date(row.failedAt), error: row.error ?? '' };
}
