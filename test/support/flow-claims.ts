/**
 * The limited claim's specs (flow-claim, flow-claim-fixes, flow-leases, flow-grace): pending rows of
 * one queue inserted directly, one limited claim through the repository, the database's now.
 */
import type { TypeOrmWorkerRepository } from '../../lib/index.js';
import type { ClaimFlowLimits, ClaimFlowReport } from '../../lib/interfaces/flow-control.interface.js';
import type { IWorkerModel } from '../../lib/interfaces/worker-model.interface.js';
import { execute, type TestApp } from './test-app.js';

/** The queue the limited-claim specs fill. */
export const FLOW_QUEUE = 'flow';

/** A pending row to insert: its event name, concurrency key and priority. */
export interface RowSpec {
  event?: string;
  key?: string | null;
  priority?: number;
}

/** The database's now, epoch ms, read outside any claim. */
export async function databaseNow(t: TestApp): Promise<number> {
  const type = t.dataSource.options.type;
  const sql =
    type === 'postgres'
      ? 'SELECT floor(extract(epoch from clock_timestamp()) * 1000)::bigint AS now'
      : type === 'better-sqlite3'
        ? "SELECT CAST(unixepoch('subsec') * 1000 AS INTEGER) AS now"
        : "SELECT TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(3)) DIV 1000 AS now";
  const [row] = (await t.dataSource.query(sql)) as { now: unknown }[];
  return Number(row!.now);
}

/** Inserts pending rows of FLOW_QUEUE, due a second before `now` (default: the database's), ids ascending. */
export async function insertFlowRows(t: TestApp, rows: RowSpec[], now?: number): Promise<void> {
  const at = now ?? (await databaseNow(t));
  for (let start = 0; start < rows.length; start += 100) {
    const chunk = rows.slice(start, start + 100);
    await execute(
      t.dataSource,
      'INSERT INTO nestjs_workers (queue_name, event_name, payload, attempts, retries, priority, available_at, ' +
        'created_at, updated_at, concurrency_key) VALUES ' +
        chunk.map(() => '(?, ?, ?, 0, 3, ?, ?, ?, ?, ?)').join(', '),
      chunk.flatMap((row, index) => [
        FLOW_QUEUE,
        row.event ?? 'FlowEvent',
        '{}',
        row.priority ?? 0,
        at - 1000 + start + index,
        at,
        at,
        row.key ?? null,
      ]),
    );
  }
}

/** One limited claim of FLOW_QUEUE through the repository: the models it took and its flow report. */
export async function claimFlow(
  repository: TypeOrmWorkerRepository,
  flow: ClaimFlowLimits,
  limit: number,
  { workerId = 'worker-1', leaseMs = 60_000 }: { workerId?: string; leaseMs?: number } = {},
): Promise<{ models: IWorkerModel[]; report: ClaimFlowReport | undefined }> {
  const request = {
    queueName: FLOW_QUEUE,
    limit,
    workerId,
    leaseMs,
    dueBy: new Date(await repository.currentTime()),
    flow,
    flowReport: undefined as ClaimFlowReport | undefined,
  };
  const models = await repository.claimWorkers(request);
  return { models, report: request.flowReport };
}
