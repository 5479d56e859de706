import { concurrencyKeyOf } from '../worker-row.js';
import type { WorkerTables } from '../worker-tables.js';
import type { FlowSpelling } from './flow-spelling.js';
import { chunked, placeholders, type SqlStatement } from './statement.js';

/**
 * The slots of a queue with concurrency limits: one per job a limited claim took. A slot is live while
 * the pending row `id = job_id` still has the slot's lease token under a live lease (database clock);
 * completion, retry, failure, cancel and an expired lease all end it without a write of their own,
 * and the next limited claim deletes it (sql/limited-claim.ts).
 */

type SlotTables = Pick<WorkerTables, 'pending' | 'slots'>;

/** A slot of the queue as slotsStatement reads it. */
export interface SlotRow {
  jobId: string;
  concurrencyKey: string | null;
  live: boolean;
}

/**
 * Every slot of the queue and whether it is live at `now`: one range of the slots index, and a
 * primary-key probe of the pending table per slot (the slots are few: what runs now). A plain read,
 * locking nothing: a completion or a heartbeat beside it never waits.
 */
export function slotsStatement(tables: SlotTables, queueName: string, now: number): SqlStatement {
  return {
    sql:
      'SELECT s.job_id, s.concurrency_key, CASE WHEN p.id IS NULL THEN 0 ELSE 1 END AS live ' +
      `FROM ${tables.slots} s LEFT JOIN ${tables.pending} p ON p.id = s.job_id ` +
      'AND p.lease_token = s.lease_token AND p.lease_expires_at > ? WHERE s.queue_name = ?',
    parameters: [now, queueName],
  };
}

export function slotRowsOf(rows: Record<string, unknown>[]): SlotRow[] {
  return rows.map((row) => ({
    jobId: String(row.job_id),
    concurrencyKey: concurrencyKeyOf(row.concurrency_key),
    live: Number(row.live) === 1,
  }));
}

/** Deletes the dead slots found (by primary key), in statements within the bind limit. */
export function deleteSlotsStatements(slots: string, spelling: FlowSpelling, jobIds: string[]): SqlStatement[] {
  return chunked(jobIds, spelling.maxParameters).map((chunk) => ({
    sql: `DELETE FROM ${slots} WHERE job_id IN (${placeholders(chunk.length)})`,
    parameters: chunk,
  }));
}

/** A slot a claim takes: the job, its key and the claim's lease token. */
export interface NewSlot {
  jobId: string;
  concurrencyKey: string | null;
}

/**
 * Inserts the slots of the jobs a claim took. A job whose earlier slot still stands (its lease ended
 * between the claim's read of the slots and of the candidates, counted live there) gets the new
 * lease token instead: the slot is the job's, whichever claim holds it now.
 */
export function insertSlotsStatements(
  slots: string,
  spelling: FlowSpelling,
  queueName: string,
  leaseToken: string,
  taken: NewSlot[],
): SqlStatement[] {
  const columns = ['job_id', 'queue_name', 'concurrency_key', 'lease_token'];
  return chunked(taken, Math.floor(spelling.maxParameters / columns.length)).map((chunk) => ({
    sql: spelling.upsertRows(
      slots,
      columns,
      chunk.map(() => `(${placeholders(columns.length)})`).join(', '),
      ['job_id'],
      ['queue_name', 'concurrency_key', 'lease_token'],
    ),
    parameters: chunk.flatMap((slot) => [slot.jobId, queueName, slot.concurrencyKey, leaseToken]),
  }));
}
