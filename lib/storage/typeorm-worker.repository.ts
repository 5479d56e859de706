import { randomUUID } from 'node:crypto';
import { type DataSource, IsNull } from 'typeorm';
import { CorruptPayloadError, EventCancelledError, LeaseLostError, WorkerError } from '../errors/worker.error.js';
import type { CancelledEvent } from '../interfaces/cancel.interface.js';
import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';
import type { ClaimFlowLimits } from '../interfaces/flow-control.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type {
  ClaimRequest,
  FailEntry,
  FailedMoveOutcome,
  HistoryEntry,
  HistoryOutcome,
  HistoryRecord,
  IWorkerQueueRepository,
  LeaseRenewal,
  QueueHealth,
  RetryEntry,
  RetryOutcome,
  RetryRequest,
  WorkerProcessState,
  ThroughputCount,
} from '../interfaces/worker-repository.interface.js';
import { emptyStatistics } from '../common/queue-statistics.js';
import { failedModelsOfCreator, notClaimedHere } from '../worker.messages.js';
import { dialectFor } from './dialects/dialect-for.js';
import type { WorkerDialect } from './dialects/worker-dialect.js';
import { type DatabaseClock, databaseClock } from './database-clock.js';
import { FailedWorkerEntity, WorkerEntity } from './entities/worker.entity.js';
import { cancelRow, type CancelRowTarget } from './sql/cancel.js';
import { claimParametersOf, compareClaimOrder } from './sql/claim.js';
import { completeStatement, stillPendingStatement } from './sql/complete.js';
import {
  completeLeasedRowsToHistory,
  historyChunks,
  historyMoveOutcomes,
  type HistoryRow,
  ID_MARK,
} from './sql/complete-to-history.js';
import { type CountDueParameters, countDueStatement } from './sql/count-due.js';
import { moveLeasedRowsToFailed } from './sql/fail.js';
import { byLeaseToken } from './sql/leased-rows.js';
import type { NamedStatement } from './sql/named-parameters.js';
import { releaseStatements } from './sql/release.js';
import { heldRowsStatement, renewStatement, rowsPerRenewal } from './sql/renew.js';
import { retryLeasedRows } from './sql/retry.js';
import { queueStatisticsStatement, toQueueStatistics } from './sql/statistics.js';
import { chunked } from './sql/statement.js';
import { deleteWorkerProcessStatement } from './sql/worker-process-delete.js';
import { insertWorkerProcessStatement } from './sql/worker-process-insert.js';
import { refreshWorkerProcessStatement } from './sql/worker-process-refresh.js';
import { minuteOf, throughputUpsertStatement } from './sql/throughput.js';
import { TypeOrmWorkerModel } from './typeorm-worker.model.js';
import { fromRawRow, type RawWorkerRow, storableErrorText, toAttributes } from './worker-row.js';
import { type WorkerTables, workerTables } from './worker-tables.js';

/**
 * larascript-events' IWorkerRepository on TypeORM, with leasing: rows are claimed atomically per dialect
 * and every later write is fenced by the claim's lease token.
 */
export class TypeOrmWorkerRepository implements IWorkerQueueRepository {
  private readonly dialect: WorkerDialect;
  private readonly tables: WorkerTables;
  /** Queues whose last claim in this process took a full batch (see claimWorkers). */
  private readonly busyQueues = new Set<string>();

  private readonly clock: DatabaseClock;
  private readonly countDueSql: NamedStatement<CountDueParameters>;

  constructor(private readonly dataSource: DataSource) {
    this.dialect = dialectFor(dataSource);
    this.tables = workerTables(dataSource);
    this.clock = databaseClock(dataSource);
    this.countDueSql = countDueStatement(this.tables.pending, this.dialect);
  }

  /** The database's time (see DatabaseClock): the worker's pass starts and retry due times. */
  currentTime(): Promise<number> {
    return this.clock.current();
  }

  /** Every pending row (waiting, retrying or running) that is not soft-deleted, oldest first. */
  async getWorkers(): Promise<IWorkerModel[]> {
    const rows = await this.dataSource
      .getRepository(WorkerEntity)
      .find({ where: { deletedAt: IsNull() }, order: { id: 'ASC' } });
    return rows.map((row) => new TypeOrmWorkerModel(this.dataSource, WorkerEntity, { ...row, id: String(row.id) }));
  }

  /**
   * Counts the due rows first (at most `limit`, one range of the due index), then claims no more than
   * that through the claim-order index: the walk in priority order stops once it has them, instead
   * of passing every delayed row of the queue when fewer than `limit` are due.
   */
  async claimWorkers(request: ClaimRequest): Promise<IWorkerModel[]> {
    // A queue with limits: the limited claim reads a bounded window itself, and its report (paused,
    // nextStartAt) must come back whatever is due, so no count first.
    if (request.flow) return this.claimLimited(request, request.flow);
    // A queue whose last claim here came back full is busy: claim at once, the walk finds enough.
    if (request.expectDue || this.busyQueues.has(request.queueName)) return this.claimDue(request, request.limit);
    const due = await this.countDue(request.queueName, request.dueBy, request.limit);
    if (due === 0) return [];
    return this.claimDue(request, Math.min(request.limit, due));
  }

  private async claimDue(request: ClaimRequest, limit: number): Promise<IWorkerModel[]> {
    const leaseToken = randomUUID();
    const raws = await this.dialect.claim(claimParametersOf({ ...request, limit }, leaseToken));
    if (raws.length >= request.limit) this.busyQueues.add(request.queueName);
    else this.busyQueues.delete(request.queueName);
    return this.claimedModels(raws, leaseToken);
  }

  /** The limited claim (sql/limited-claim.ts): the rows the queue's limits allow, and its flow report. */
  private async claimLimited(request: ClaimRequest, flow: ClaimFlowLimits): Promise<IWorkerModel[]> {
    const leaseToken = randomUUID();
    const { rows, report } = await this.dialect.claimLimited(claimParametersOf(request, leaseToken), flow);
    request.flowReport = report;
    return this.claimedModels(rows, leaseToken);
  }

  private claimedModels(raws: RawWorkerRow[], leaseToken: string): IWorkerModel[] {
    return (
      raws
        .map(fromRawRow)
        // A batch runs in claim order: priority, then due time, then age.
        .sort(compareClaimOrder)
        .map((fields) => new TypeOrmWorkerModel(this.dataSource, WorkerEntity, fields, leaseToken))
    );
  }

  countDueWorkers(queueName: string, dueBy: Date, limit = Number.MAX_SAFE_INTEGER): Promise<number> {
    return this.countDue(queueName, dueBy, limit);
  }

  /** Due rows that are not leased, at most `limit`: one range of the due index (see countDueStatement). */
  private async countDue(queueName: string, dueBy: Date, limit: number): Promise<number> {
    const [counted] = await this.dialect.query(this.countDueSql.bind({ queueName, dueBy: dueBy.getTime(), limit }));
    return Number(counted?.due_count ?? 0);
  }

  async completeWorker(model: IWorkerModel): Promise<void> {
    await leased(model).deleteWith(this.dataSource.manager);
  }

  /** One DELETE per lease token (a claim's rows share one): WHERE lease_token = ? AND id IN (…). */
  async completeWorkers(models: IWorkerModel[]): Promise<string[]> {
    const lost: string[] = [];
    for (const [leaseToken, ids] of byLeaseToken(models.map(leasedRow))) {
      const { affected } = await this.dialect.execute(completeStatement(this.tables.pending, leaseToken, ids));
      if (affected < ids.length) {
        // Rare: another worker holds some of them now; the rows still there are the ones it holds.
        const held = await this.dialect.query(stillPendingStatement(this.tables.pending, ids));
        lost.push(...held.map((row) => String(row.id)));
      }
    }
    return lost;
  }

  /**
   * Where the database has it (HistoryMoveSpelling: PostgreSQL), one statement per lease token, the
   * fenced DELETE feeding the INSERT; elsewhere one transaction for the batch: per lease token a
   * locking read of the rows still held, one INSERT … SELECT into the history, one fenced DELETE
   * (see completeLeasedRowsToHistory).
   */
  async completeWorkersToHistory(entries: HistoryEntry[]): Promise<Map<string, HistoryOutcome>> {
    if (entries.length === 0) return new Map();
    const rows = entries.map((entry) => historyRowOf(leasedRow(entry.model), entry));
    const move = this.dialect.historyMoveStatement;
    if (!move) {
      return this.dialect.atomically(completeLeasedRowsToHistory(this.tables, rows, this.dialect, cancelledErrorOf));
    }
    const outcomes = new Map<string, HistoryOutcome>();
    for (const [leaseToken, leaseRows] of rowsByLeaseToken(rows)) {
      // Arrays bind any number of rows; only the texts bound a statement. Each statement moves its
      // own rows whole, so a second one for the same lease copies none twice.
      for (const chunk of historyChunks(leaseRows, Infinity, Infinity)) {
        const moved = await this.dialect.query(move(this.tables, leaseToken, chunk, cancelledErrorOf));
        historyMoveOutcomes(
          chunk.map((row) => row.id),
          moved,
          outcomes,
        );
      }
    }
    return outcomes;
  }

  /**
   * One upsert per batch into the throughput table, at the minute of the database's now (the
   * clock's estimate: no round trip for it).
   */
  async recordThroughput(counts: ThroughputCount[]): Promise<void> {
    const minute = minuteOf(await this.clock.current());
    const statement = throughputUpsertStatement(this.tables.throughput, minute, counts, this.dialect);
    if (statement) await this.dialect.execute(statement);
  }

  /** retryWorkers() of one row; throws EventCancelledError or LeaseLostError when it was not retried. */
  async retryWorker(model: IWorkerModel, retry: RetryRequest): Promise<void> {
    const { id } = leased(model);
    throwUnlessRecorded(id, (await this.retryWorkers([{ model, retry }])).get(id));
  }

  /**
   * One transaction: per lease token a locking read of the rows still held, then one UPDATE (see
   * retryLeasedRows).
   */
  async retryWorkers(entries: RetryEntry[]): Promise<Map<string, RetryOutcome>> {
    if (entries.length === 0) return new Map();
    const rows = entries.map(({ model, retry, history }) => {
      const row = leasedRow(model);
      return {
        ...row,
        error: storableErrorText(retry.error),
        retries: retry.retries,
        availableAt: retry.availableAt.getTime(),
        snoozed: retry.snoozed === true,
        history: history && historyRowOf(row, history),
      };
    });
    return this.dialect.atomically(retryLeasedRows(this.tables, rows, this.dialect));
  }

  /** failWorkers() of one row; throws EventCancelledError or LeaseLostError when it was not moved. */
  async failWorker(model: IWorkerModel, failed: IWorkerModel): Promise<void> {
    const { id } = leased(model);
    throwUnlessRecorded(id, (await this.failWorkers([{ model, failed }])).get(id));
  }

  /**
   * One transaction for the whole batch: locking read, one DELETE per lease token, multi-row INSERTs
   * (see moveLeasedRowsToFailed).
   */
  async failWorkers(entries: FailEntry[]): Promise<Map<string, FailedMoveOutcome>> {
    if (entries.length === 0) return new Map();
    const rows = entries.map(({ model, failed, durationMs, progress, history }) => {
      if (!(failed instanceof TypeOrmWorkerModel) || failed.table !== FailedWorkerEntity) {
        throw new WorkerError(failedModelsOfCreator());
      }
      const row = leasedRow(model);
      return {
        ...row,
        failedRow: failed.databaseRow(),
        durationMs,
        progress,
        history: history && historyRowOf(row, history),
      };
    });
    return this.dialect.atomically(
      moveLeasedRowsToFailed(this.tables, rows, (name) => this.dataSource.driver.escape(name), this.dialect),
    );
  }

  /**
   * By primary key and lease token: an index lookup, so InnoDB locks only the rows renewed. The new
   * expiry is the database's now plus the lease. Resolves to what the heartbeat must act on: rows
   * cancelled meanwhile, and rows this lease no longer holds (taken by another worker after it
   * expired, or deleted). `progress` (reported since the last renewal) is written by the same UPDATE.
   */
  async renewLeases(
    models: IWorkerModel[],
    leaseMs: number,
    progress?: ReadonlyMap<string, string>,
  ): Promise<LeaseRenewal> {
    const leaseTokens = leaseTokensOf(models);
    if (leaseTokens.length === 0) return { cancelled: [], lost: [] };
    const ids = models.map((model) => leased(model).id);
    const { pending } = this.tables;
    // One statement for any batch a claim takes; only a batch past the bind limit is split.
    for (const chunk of chunked(ids, rowsPerRenewal(this.dialect.maxParameters, leaseTokens.length)))
      await this.dialect.execute(renewStatement(pending, chunk, leaseTokens, leaseMs, this.dialect, progress));
    // Read after the UPDATE: a row still held now was renewed by it (fencing keeps any other worker's out).
    const held = await this.dialect.query(heldRowsStatement(pending, ids, leaseTokens));
    const heldIds = new Set(held.map((row) => String(row.id)));
    return {
      // Cancelled while running: the heartbeat is how a worker in another process hears of it.
      cancelled: held
        .filter((row) => row.deleted_at !== null && row.deleted_at !== undefined)
        .map((row) => String(row.id)),
      lost: ids.filter((id) => !heldIds.has(id)),
    };
  }

  /** Whether the row runs is decided on the database's clock (its lease is live), not by `_now`. */
  async cancelWorker(
    target: CancelRowTarget,
    _now?: number,
    keep?: (queueName: string, eventName: string) => boolean,
  ): Promise<CancelledEvent | undefined> {
    const row = await this.dialect.atomically(cancelRow(this.tables, target, this.dialect, keep));
    if (!row) return undefined;
    const fields = fromRawRow(row);
    const cancelled: CancelledEvent = {
      id: String(fields.id),
      queueName: fields.queueName,
      eventName: fields.eventName,
      wasRunning: row.was_running === true,
    };
    try {
      cancelled.attributes = toAttributes(fields);
    } catch (error) {
      if (!(error instanceof CorruptPayloadError)) throw error;
    }
    return cancelled;
  }

  /**
   * Back in line where it was (its due time and priority never changed), with the claim's attempt
   * taken back, so releasing never costs a row its turn nor an attempt; a row cancelled while it
   * waited is removed instead.
   */
  async releaseWorkers(models: IWorkerModel[]): Promise<void> {
    const leaseTokens = leaseTokensOf(models);
    if (leaseTokens.length === 0) return;
    const ids = models.map((model) => leased(model).id);
    for (const statement of releaseStatements(this.tables.pending, ids, leaseTokens))
      await this.dialect.execute(statement);
  }

  /** larascript-events' health counts, read from the same one-statement statistics. */
  async getQueueHealth(queueNames?: string[]): Promise<QueueHealth[]> {
    return (await this.getQueueStatistics(queueNames)).map(({ queueName, pending, failed }) => ({
      queueName,
      active: pending,
      failed,
      total: pending + failed,
    }));
  }

  /**
   * One UPDATE per heartbeat; the INSERT only when that found no row. No transaction: only this
   * process writes its row (its id is its own), so nothing can slip in between but the pruner's
   * delete, after which the insert is what is wanted anyway.
   */
  async saveWorkerProcess(state: WorkerProcessState): Promise<void> {
    // A DataSource destroyed under a process that never shut its WorkerService down: nothing to beat for.
    if (!this.dataSource.isInitialized) return;
    const { processes } = this.tables;
    const { affected } = await this.dialect.execute(refreshWorkerProcessStatement(processes, state, this.dialect));
    if (affected === 0) await this.dialect.execute(insertWorkerProcessStatement(processes, state, this.dialect));
  }

  async removeWorkerProcess(id: string): Promise<void> {
    if (!this.dataSource.isInitialized) return;
    await this.dialect.execute(deleteWorkerProcessStatement(this.tables.processes, id));
  }

  /**
   * Statistics per queue in one statement: every queue with rows, or the ones named (empty ones
   * included).
   */
  async getQueueStatistics(queueNames?: string[]): Promise<QueueStatistics[]> {
    if (queueNames?.length === 0) return [];
    const now = await this.clock.current();
    const rows = await this.dialect.query(queueStatisticsStatement(this.tables, queueNames, now));
    const found = rows.map((row) => toQueueStatistics(row, now));
    if (!queueNames) return found;
    return queueNames.map(
      (queueName) => found.find((statistics) => statistics.queueName === queueName) ?? emptyStatistics(queueName),
    );
  }
}

function leased(model: IWorkerModel): TypeOrmWorkerModel & { id: string; leaseToken: string } {
  if (!(model instanceof TypeOrmWorkerModel) || model.leaseToken === null || model.id === undefined) {
    throw new WorkerError(notClaimedHere());
  }
  return model as TypeOrmWorkerModel & { id: string; leaseToken: string };
}

function leasedRow(model: IWorkerModel): { id: string; leaseToken: string } {
  const { id, leaseToken } = leased(model);
  return { id, leaseToken };
}

/** The error text of a row found cancelled while it ran, as EventCancelledError says it. */
function cancelledErrorOf(id: string): string {
  return new EventCancelledError(id).message;
}

/** cancelledErrorOf() around the id: no Error (and no stack trace) made per history row. */
const [CANCELLED_BEFORE = '', CANCELLED_AFTER = ''] = cancelledErrorOf(ID_MARK).split(ID_MARK);

/**
 * A history record of a leased row, as the SQL writes it (texts made storable). Written out field by
 * field: object spread here cost microseconds a row (V8), a tenth of a no-op batch's time.
 */
function historyRowOf(row: { id: string; leaseToken: string }, record: HistoryRecord): HistoryRow {
  return {
    id: row.id,
    leaseToken: row.leaseToken,
    state: record.state,
    result: record.result,
    error: storableErrorText(record.error),
    durationMs: record.durationMs,
    progress: record.progress ?? null,
    cancelledError: CANCELLED_BEFORE + row.id + CANCELLED_AFTER,
  };
}

/** History rows per lease token (a claim's rows share one), each row once, in id order. */
function rowsByLeaseToken(rows: HistoryRow[]): Map<string, HistoryRow[]> {
  const byId = new Map(rows.map((row) => [row.id, row]));
  return new Map([...byLeaseToken(rows)].map(([leaseToken, ids]) => [leaseToken, ids.map((id) => byId.get(id)!)]));
}

/** A single-row write's outcome as the errors WorkerService handles. */
function throwUnlessRecorded(id: string, outcome: RetryOutcome | FailedMoveOutcome | undefined): void {
  if (outcome === 'cancelled') throw new EventCancelledError(id);
  if (outcome !== 'retried' && outcome !== 'moved') throw new LeaseLostError(id);
}

function leaseTokensOf(models: IWorkerModel[]): string[] {
  return [...new Set(models.map((model) => leased(model).leaseToken))];
}
