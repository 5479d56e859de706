import type { DataSource, EntityManager } from 'typeorm';
import { LeaseLostError, WorkerError } from '../errors/worker.error.js';
import { serializePayload } from '../events/payload-serializer.js';
import type { IWorkerAttributes } from '../interfaces/worker-attributes.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import { dispatchFlowMessages, rowStoreMessages } from '../worker.messages.js';
import { dialectFor } from './dialects/dialect-for.js';
import { runEach } from './sql/runner.js';
import type { AtomicWork } from './sql/statement.js';
import { FailedWorkerEntity, WorkerEntity } from './entities/worker.entity.js';
import { deleteRow } from './sql/delete-row.js';
import { insertFailedRow } from './sql/insert-failed-row.js';
import { uniqueKeyHolder } from './sql/unique-key-holder.js';
import { updateRow } from './sql/update-row.js';
import { workerTables } from './worker-tables.js';
import { insertRow, insertRows } from './sql/insert.js';
import { debouncedInsert } from './sql/debounce.js';
import { throttledInsert } from './sql/throttle.js';
import type { StoredRow } from '../interfaces/worker-creator.interface.js';
import { storableErrorText, type StoredWorkerFields, toAttributes } from './worker-row.js';

export type WorkerTable = typeof WorkerEntity | typeof FailedWorkerEntity;

/** How often a keyed insert retries when the row holding its key finished between the insert and the lookup. */
const UNIQUE_INSERT_ATTEMPTS = 5;

/**
 * larascript-events' IWorkerModel on TypeORM, for either table. A model that came from a claim carries its
 * lease token, and every write it makes is fenced by it: after the lease is lost it changes nothing.
 */
export class TypeOrmWorkerModel implements IWorkerModel {
  private fields: StoredWorkerFields | null;
  private cachedAttributes: IWorkerAttributes | null = null;
  /** False when the last insert found its unique key taken and adopted the id of the row holding it. */
  insertedNewRow = false;

  constructor(
    /** The DataSource whose queue tables hold this model's row. */
    readonly dataSource: DataSource,
    readonly table: WorkerTable,
    fields: StoredWorkerFields | null = null,
    /** Set on claimed rows: the token their writes are fenced by. */
    readonly leaseToken: string | null = null,
  ) {
    this.fields = fields;
  }

  get id(): string | undefined {
    return this.fields?.id;
  }

  async createWorkerData(data: IWorkerAttributes): Promise<void> {
    this.setData(data, { asNewRow: true });
    await this.insert(this.dataSource.manager);
  }

  async updateWorkerData(data: IWorkerAttributes): Promise<void> {
    this.setData({ ...data, id: this.fields?.id ?? data.id });
    await this.saveWorkerData();
  }

  getWorkerData<T extends IWorkerAttributes = IWorkerAttributes>(): T | null {
    if (!this.fields) return null;
    this.cachedAttributes ??= toAttributes(this.fields);
    return this.cachedAttributes as T;
  }

  async saveWorkerData(): Promise<void> {
    const fields = this.requireFields();
    if (fields.id === undefined) {
      await this.insert(this.dataSource.manager);
      return;
    }
    const escape = (name: string): string => this.dataSource.driver.escape(name);
    const values = this.columnValues(fields);
    const affected = await this.run(
      this.dataSource.manager,
      updateRow(this.tableName(), this.target(fields.id), values, escape),
    );
    this.assertAffected(affected);
  }

  async deleteWorkerData(): Promise<void> {
    await this.deleteWith(this.dataSource.manager);
  }

  /** Inserts the row through `manager` (a transaction's, when the insert is part of one). */
  async insert(manager: EntityManager): Promise<void> {
    assertManagerOf(this.dataSource, manager);
    const { id, created } =
      this.table === WorkerEntity ? await this.insertPending(manager) : await this.insertFailed(manager);
    this.fields = { ...this.requireFields(), id };
    this.insertedNewRow = created;
    this.cachedAttributes = null;
  }

  /**
   * Stores the row as a throttled dispatch of its unique key (see throttledInsert): through the
   * caller's transaction (`manager`), else in one of its own. Adopts the id of the period's event
   * when the period's window is open (insertedNewRow false).
   */
  insertThrottled(manager: EntityManager | undefined, periodMs: number): Promise<void> {
    return this.insertKeyed(manager, (tables, dialect, row, queueName, uniqueKey) =>
      throttledInsert(tables, dialect, row, { queueName, uniqueKey, periodMs }),
    );
  }

  /**
   * Stores the row as a debounced dispatch of its unique key (see debouncedInsert): a waiting holder
   * takes this row's values and keeps its id (insertedNewRow false), a running one is detached.
   */
  insertDebounced(manager: EntityManager | undefined): Promise<void> {
    const values = this.databaseRow();
    return this.insertKeyed(manager, (tables, dialect, row, queueName, uniqueKey) =>
      debouncedInsert(tables, dialect, row, values, { queueName, uniqueKey }),
    );
  }

  /** A keyed insert's transaction script, run in the caller's transaction or one of its own. */
  private async insertKeyed(
    manager: EntityManager | undefined,
    build: (
      tables: ReturnType<typeof workerTables>,
      dialect: ReturnType<typeof dialectFor>,
      row: ReturnType<typeof insertRow>,
      queueName: string,
      uniqueKey: string,
    ) => AtomicWork<StoredRow | undefined>,
  ): Promise<void> {
    if (manager) assertManagerOf(this.dataSource, manager);
    const fields = this.requireFields();
    const { queueName, uniqueKey } = fields;
    if (this.table !== WorkerEntity || uniqueKey === null)
      throw new WorkerError(dispatchFlowMessages.notAKeyedPendingRow);
    const dialect = dialectFor(this.dataSource);
    const tables = workerTables(this.dataSource);
    const row = insertRow(tables.pending, this.databaseRow(), (name) => this.dataSource.driver.escape(name));
    const work = build(tables, dialect, row, queueName, uniqueKey);
    const stored = manager?.queryRunner ? await dialect.within(manager, work) : await dialect.atomically(work);
    if (!stored) throw new WorkerError(dispatchFlowMessages.keyKeptTaken(queueName, uniqueKey));
    this.fields = { ...fields, id: stored.id };
    this.insertedNewRow = stored.inserted;
    this.cachedAttributes = null;
  }

  /**
   * Inserts new pending rows in as few statements as the database allows, in one transaction: the
   * caller's (`manager`) or its own. Sets each model's id. Rows must not carry unique keys.
   */
  static async insertMany(models: TypeOrmWorkerModel[], manager?: EntityManager): Promise<void> {
    const [first] = models;
    if (!first) return;
    const { dataSource } = first;
    if (models.some((model) => model.dataSource !== dataSource || model.table !== WorkerEntity)) {
      throw new WorkerError(rowStoreMessages.insertManyMixed);
    }
    const ids = await insertPendingRows(
      dataSource,
      models.map((model) => model.databaseRow()),
      manager,
    );
    models.forEach((model, index) => {
      model.fields = { ...model.requireFields(), id: ids[index] };
      model.insertedNewRow = true;
      model.cachedAttributes = null;
    });
  }

  /**
   * Raw SQL through the dialect: a taken unique key is then a normal outcome, not an error that
   * aborts the transaction.
   */
  private async insertPending(manager: EntityManager): Promise<{ id: string; created: boolean }> {
    const dialect = dialectFor(this.dataSource);
    const row = this.databaseRow();
    const { queueName, uniqueKey } = this.requireFields();
    for (let attempt = 1; attempt <= UNIQUE_INSERT_ATTEMPTS; attempt++) {
      const id = await dialect.insertPending(manager, row);
      if (id !== undefined) return { id, created: true };
      const holder = uniqueKeyHolder(workerTables(this.dataSource).pending, queueName, uniqueKey);
      // Plain reads, no locks: first in the caller's transaction (the holder may be its own row), then
      // outside it, where a holder committed after a REPEATABLE READ snapshot is visible.
      const [found] = await dialect.query(holder, manager);
      const [committed] = found || manager === this.dataSource.manager ? [found] : await dialect.query(holder);
      if (committed) return { id: String(committed.id), created: false };
    }
    throw new WorkerError(rowStoreMessages.uniqueKeyKeptTaken(queueName, uniqueKey));
  }

  private async insertFailed(manager: EntityManager): Promise<{ id: string; created: boolean }> {
    // A failed row saved through the model API (batch moves insert databaseRow() in their own statements).
    const escape = (name: string): string => this.dataSource.driver.escape(name);
    const work = insertFailedRow(this.tableName(), this.databaseRow(), escape, dialectFor(this.dataSource));
    const id = await this.run(manager, work);
    if (id === undefined) throw new WorkerError(rowStoreMessages.noInsertedId(this.table.name));
    return { id, created: true };
  }

  /** The row this model inserts, keyed by database column name. */
  databaseRow(): Record<string, unknown> {
    return databaseRowOf(this.dataSource, this.table, this.requireFields());
  }

  /** Deletes the row through `manager`, fenced by the lease token when there is one. */
  async deleteWith(manager: EntityManager): Promise<void> {
    const id = this.requireFields().id;
    if (id === undefined) throw new WorkerError(rowStoreMessages.deleteUnsaved);
    this.assertAffected(await this.run(manager, deleteRow(this.tableName(), this.target(id))));
  }

  /** The row's id and, on a claimed row, the lease token every write to it is fenced by. */
  private target(id: string): { id: string; leaseToken: string | null } {
    return { id, leaseToken: this.leaseToken };
  }

  private tableName(): string {
    const tables = workerTables(this.dataSource);
    return this.table === WorkerEntity ? tables.pending : tables.failed;
  }

  /**
   * Runs `work` in the transaction of `manager` when it belongs to one, else statement by statement
   * outside any (each work here is one statement).
   */
  private run<T>(manager: EntityManager, work: AtomicWork<T>): Promise<T> {
    const dialect = dialectFor(this.dataSource);
    return manager.queryRunner
      ? dialect.within(manager, work)
      : runEach(work, (statement) => dialect.execute(statement));
  }

  /**
   * The columns an update writes ({ column: value }): those both tables share (the lease columns of
   * a claimed row included), plus failed_at on the failed table; never the id or the due time.
   */
  private columnValues(fields: StoredWorkerFields): Record<string, unknown> {
    const { id: _id, failedAt, availableAt: _availableAt, ...shared } = fields;
    const properties: Record<string, unknown> =
      this.table === FailedWorkerEntity && failedAt !== undefined ? { ...shared, failedAt } : shared;
    const values: Record<string, unknown> = {};
    for (const [property, column] of columnNames(this.dataSource, this.table)) {
      if (properties[property] !== undefined) values[column] = properties[property];
    }
    return values;
  }

  private assertAffected(affected: number): void {
    if (affected !== 0) return;
    const id = this.requireFields().id ?? '(unsaved)';
    if (this.leaseToken !== null) throw new LeaseLostError(id);
    throw new WorkerError(rowStoreMessages.rowGone(id, this.table.name));
  }

  /**
   * Replaces the data in memory only; saveWorkerData() stores it. `asNewRow` leaves the id unset
   * whatever `data` has.
   */
  setData(data: IWorkerAttributes, { asNewRow = false } = {}): void {
    this.fields = storedFieldsOf(data, asNewRow);
    this.cachedAttributes = null;
  }

  private requireFields(): StoredWorkerFields {
    if (!this.fields) throw new WorkerError(rowStoreMessages.modelWithoutData);
    return this.fields;
  }
}

/**
 * Inserts new pending rows ({ column: value }) in as few statements as the database allows, in one
 * transaction (the caller's with `manager`, else its own), and resolves to their ids in order.
 */
export async function insertPendingRows(
  dataSource: DataSource,
  rows: Record<string, unknown>[],
  manager?: EntityManager,
): Promise<string[]> {
  if (rows.length === 0) return [];
  if (manager) assertManagerOf(dataSource, manager);
  const dialect = dialectFor(dataSource);
  const work = insertRows(workerTables(dataSource).pending, rows, (name) => dataSource.driver.escape(name), dialect);
  return manager ? dialect.within(manager, work) : dialect.atomically(work);
}

/** larascript-events' attributes in stored form (payload serialized and checked, instants as epoch ms). */
export function storedFieldsOf(data: IWorkerAttributes, asNewRow = false): StoredWorkerFields {
  return {
    id: asNewRow ? undefined : data.id,
    queueName: data.queueName,
    eventName: data.eventName,
    payload: serializePayload(data.eventName, data.payload),
    attempts: data.attempts,
    retries: data.retries,
    error: storableErrorText(data.error ?? null),
    createdAt: data.createdAt.getTime(),
    updatedAt: data.updatedAt.getTime(),
    failedAt: data.failedAt?.getTime(),
    deletedAt: data.deletedAt?.getTime() ?? null,
    availableAt: data.availableAt?.getTime(),
    priority: data.priority ?? 0,
    uniqueKey: data.uniqueKey ?? null,
    // A new row stores its key (or none); an update without one leaves the row's key as it is.
    concurrencyKey: asNewRow ? (data.concurrencyKey ?? null) : data.concurrencyKey,
  };
}

/** The row `fields` are stored as in `table`, keyed by column name. */
export function databaseRowOf(
  dataSource: DataSource,
  table: WorkerTable,
  stored: StoredWorkerFields,
): Record<string, unknown> {
  // Read straight from the fields (no intermediate objects): bulk dispatch builds tens of thousands of these.
  const fields = stored as StoredWorkerFields & Record<string, unknown>;
  const pending = table === WorkerEntity;
  const row: Record<string, unknown> = {};
  for (const [property, column] of columnNames(dataSource, table)) {
    let value = property === 'id' ? undefined : fields[property];
    if (property === 'availableAt') value = pending ? (fields.availableAt ?? fields.createdAt) : undefined;
    else if (property === 'failedAt') value = pending ? undefined : (fields.failedAt ?? Date.now());
    if (value !== undefined) row[column] = value;
  }
  return row;
}

function assertManagerOf(dataSource: DataSource, manager: EntityManager): void {
  if (manager.connection === dataSource) return;
  throw new WorkerError(
    rowStoreMessages.managerOfAnotherDataSource(String(manager.connection.options.type), dataSource.options.type),
  );
}

const columnNamesByTable = new WeakMap<DataSource, Map<WorkerTable, [property: string, column: string][]>>();

/** Property → column name pairs of a table, read from the metadata once per DataSource (bulk inserts build many). */
function columnNames(dataSource: DataSource, table: WorkerTable): [string, string][] {
  let tables = columnNamesByTable.get(dataSource);
  if (!tables) columnNamesByTable.set(dataSource, (tables = new Map()));
  let names = tables.get(table);
  if (!names)
    tables.set(
      table,
      (names = dataSource.getMetadata(table).columns.map((column) => [column.propertyName, column.databaseName])),
    );
  return names;
}
