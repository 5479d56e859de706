import type { ClaimRequest } from '../../interfaces/worker-repository.interface.js';
import type { SqlSpelling } from './statement.js';

/**
 * The claim: each dialect writes its claim statement whole (dialects/*.dialect.ts), from the pieces
 * here that every claim and the due count must agree on.
 */

/**
 * The claim order: lower priority first, then oldest due, then oldest row. The claim-order index
 * IDX_nestjs_workers_claim is (queue_name, priority, available_at, id), so a claim walks it in this
 * order without a sort, however long the queue.
 */
export const CLAIM_ORDER = 'priority, available_at, id';

/**
 * The columns a claim returns: what a worker reads of a claimed row (fromRawRow) and its lease. Not
 * the job-state columns (started_at, progress: the database copies them where they go) — every
 * column returned is work per row on the claim, the hot path, and more for the garbage collector.
 */
export const CLAIMED_COLUMNS =
  'id, queue_name, event_name, payload, attempts, retries, priority, unique_key, error, created_at, ' +
  'updated_at, deleted_at, available_at, locked_by, lease_token, lease_expires_at';

/** CLAIM_ORDER in JavaScript, for the rows of one claim (a batch runs in claim order). */
export function compareClaimOrder(
  a: { priority: number; availableAt: number; id?: string },
  b: { priority: number; availableAt: number; id?: string },
): number {
  return a.priority - b.priority || a.availableAt - b.availableAt || compareIds(a.id, b.id);
}

/** Decimal ids of one sequence in numeric order: a shorter one is smaller, equal lengths compare as text. */
export function compareIds(a = '', b = ''): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** The named parameters of every claim statement. */
export interface ClaimParameters {
  queueName: string;
  /** The pass start, epoch ms (capped at the database's now by dueBySql). */
  dueBy: number;
  limit: number;
  workerId: string;
  leaseToken: string;
  leaseMs: number;
}

export function claimParametersOf(request: ClaimRequest, leaseToken: string): ClaimParameters {
  const { queueName, limit, workerId, leaseMs } = request;
  return { queueName, dueBy: request.dueBy.getTime(), limit, workerId, leaseToken, leaseMs };
}

/**
 * The rows a claim may take, after `queue_name = :queueName`: due by the pass start (`:dueBy`) and by
 * the database's clock, not cancelled, and not under a live lease. A row keeps its due time while
 * leased (lease_expires_at holds the lease), so an abandoned row is claimable again in its original
 * place in the claim order, ahead of any backlog due after it. lease_expires_at is in no index: the
 * claim walks the claim-order index and passes over the few rows running now.
 */
export function claimableCondition({ nowSql, dueBySql }: Pick<SqlSpelling, 'nowSql' | 'dueBySql'>): string {
  return (
    `available_at <= ${dueBySql} AND deleted_at IS NULL ` +
    `AND (lease_expires_at IS NULL OR lease_expires_at <= ${nowSql})`
  );
}

/**
 * The plain claim's pause check, after `queue_name = :queueName`: the queue has no paused row (flow
 * control's queues table). Not correlated with the rows: the planner evaluates it once per claim, a
 * probe of the queues table's primary key, and the walk of the claim-order index is unchanged. A claim
 * that starts after a pause committed takes nothing.
 */
export function notPausedCondition(queues: string): string {
  return `NOT EXISTS (SELECT 1 FROM ${queues} WHERE queue_name = :queueName AND paused = 1)`;
}

/**
 * What a claim sets on the rows it takes: attempts + 1, the lease columns, lease_expires_at = the
 * database's now + leaseMs, started_at = the database's now (the attempt's start, for getJob() and
 * the history), progress cleared (it tells how far this attempt got, not an earlier one; the failed
 * copy keeps the last attempt's). The due time (available_at) and priority are left as they are, so a row
 * whose lease expires is claimable again in its original place. It changes no indexed column
 * (started_at is in none either): on PostgreSQL a claim is a HOT update.
 */
export function claimAssignments({ nowSql }: Pick<SqlSpelling, 'nowSql'>): string {
  return (
    'attempts = attempts + 1, locked_by = :workerId, lease_token = :leaseToken, ' +
    `lease_expires_at = ${nowSql} + :leaseMs, started_at = ${nowSql}, progress = NULL, updated_at = ${nowSql}`
  );
}
