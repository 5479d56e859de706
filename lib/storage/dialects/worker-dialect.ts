import type { EntityManager } from 'typeorm';
import { WorkerError } from '../../errors/worker.error.js';
import type { ClaimParameters } from '../sql/claim.js';
import type { PendingInserts } from '../sql/insert.js';
import type { JsonSpelling } from '../sql/job-rows.js';
import type { ClaimFlowLimits } from '../../interfaces/flow-control.interface.js';
import type { FlowSpelling } from '../sql/flow-spelling.js';
import type { LimitedClaimResult } from '../sql/limited-claim.js';
import type { AtomicWork, SqlSpelling, SqlStatement, StatementResult } from '../sql/statement.js';
import type { HistoryMoveSpelling, RowsTableSpelling } from '../sql/complete-to-history.js';
import type { AddingUpsertSpelling } from '../sql/throughput.js';
import type { RawWorkerRow } from '../worker-row.js';

/**
 * What a database can do, as data: the layers above storage ask these (storageCapabilities) instead
 * of testing the database type.
 */
export interface StorageCapabilities {
  /**
   * A caller's transaction (an EntityManager of dataSource.transaction) can take the queue's writes:
   * true on the servers, where each transaction has a pooled connection of its own. False on SQLite:
   * TypeORM runs every query on one connection there, so an open transaction would take in the
   * claims, completions and dispatches of the whole process.
   */
  readonly joinsCallerTransaction: boolean;
  /** Idle workers can be woken when rows are committed (PostgreSQL LISTEN/NOTIFY, see postgres-wakeups). */
  readonly canListen: boolean;
  /** An INSERT returns the new ids as rows (RETURNING); else they come from MySQL's first insert id. */
  readonly returnsInsertedIds: boolean;
  /** The database runs inside this process (SQLite): its clock is the machine's, nothing to measure. */
  readonly embeddedClock: boolean;
}

/**
 * One database: how due rows are leased (the claim, written whole by each dialect), how its INSERTs
 * into the pending table run, how statements run atomically, and the spelling the shared statement
 * builders of lib/storage/sql put in their SQL.
 */
export interface WorkerDialect
  extends
    SqlSpelling,
    FlowSpelling,
    PendingInserts,
    JsonSpelling,
    AddingUpsertSpelling,
    RowsTableSpelling,
    HistoryMoveSpelling {
  readonly capabilities: StorageCapabilities;
  /**
   * Leases up to `parameters.limit` claimable rows of one queue to `parameters.leaseToken` (see
   * claimAssignments in sql/claim.ts) in one round trip per batch. Returns the claimed rows, in any
   * order.
   */
  claim(parameters: ClaimParameters): Promise<RawWorkerRow[]>;
  /**
   * The claim of a queue with limits (ClaimRequest.flow): the limited claim script of
   * sql/limited-claim.ts, run through atomically(). Returns the claimed rows, in any order, and the
   * claim's flow report.
   */
  claimLimited(parameters: ClaimParameters, flow: ClaimFlowLimits): Promise<LimitedClaimResult>;
  /**
   * The INSERT into the pending table as this database runs it, for every path that stores new
   * rows: made to return the new ids as rows where capabilities.returnsInsertedIds, and on
   * PostgreSQL made to wake the workers listening for the rows' queues (NOTIFY on commit).
   */
  pendingInsert(insert: SqlStatement): SqlStatement;
  /**
   * Inserts a pending row ({ column: value }) through `manager` and resolves to its id, or to
   * undefined when the row's (queue_name, unique_key) is taken: the insert then changes nothing and
   * does not abort the manager's transaction.
   */
  insertPending(manager: EntityManager, row: Record<string, unknown>): Promise<string | undefined>;
  /**
   * Runs one statement (`?` placeholders) through `manager` (default: outside any transaction);
   * resolves to its rows.
   */
  query(statement: SqlStatement, manager?: EntityManager): Promise<RawWorkerRow[]>;
  /** query() with the whole result: the rows it changed too (DELETE, UPDATE). */
  execute(statement: SqlStatement, manager?: EntityManager): Promise<StatementResult>;
  /** Runs `work` in one transaction that nothing else of this process can join; rolls back if it throws. */
  atomically<T>(work: AtomicWork<T>): Promise<T>;
  /**
   * Runs `work` through the caller's open transaction (`manager`), on its query runner. Dispatch joins
   * one only where capabilities.joinsCallerTransaction.
   */
  within<T>(manager: EntityManager, work: AtomicWork<T>): Promise<T>;
}

export type SupportedDatabaseType = 'better-sqlite3' | 'postgres' | 'mysql' | 'mariadb';
export const SUPPORTED_DATABASE_TYPES: readonly SupportedDatabaseType[] = [
  'better-sqlite3',
  'postgres',
  'mysql',
  'mariadb',
];

export class UnsupportedDatabaseError extends WorkerError {
  constructor(type: string) {
    super(
      `nestjs-workers has no claim path for TypeORM database type "${type}" ` +
        `(supported: ${SUPPORTED_DATABASE_TYPES.join(', ')})`,
    );
  }
}

export function isSupportedDatabaseType(type: unknown): type is SupportedDatabaseType {
  return SUPPORTED_DATABASE_TYPES.includes(type as SupportedDatabaseType);
}
