import type { DataSource } from 'typeorm';
import { databaseClock } from './database-clock.js';
import { dialectFor } from './dialects/dialect-for.js';
import type { WorkerDialect } from './dialects/worker-dialect.js';
import { ensureScheduleRow } from './schedule-rows.js';
import {
  cutoffStatement,
  type PrunableTable,
  pruneOlderThanStatement,
  pruneUpToStatement,
  type QueueRowScope,
  type RowCutoff,
  takePruneTurnStatement,
} from './sql/prune.js';
import { type WorkerTables, workerTables } from './worker-tables.js';

export type { EventNameScope, PrunableTable, QueueRowScope, RowCutoff } from './sql/prune.js';

/**
 * The SQL behind RetentionPruner (statements in sql/prune): the turn that one replica takes, and
 * bounded DELETEs of the history, the failed store, the throughput minutes, the process rows and the
 * ended throttle windows.
 * Every DELETE is its own short statement (autocommit), so it holds its row locks only for its own
 * few rows, and none of them touches the pending table that claims read.
 */
export class RetentionStore {
  private readonly dialect: WorkerDialect;
  private readonly tables: WorkerTables;
  private readonly turnRows = new Set<string>();

  constructor(private readonly dataSource: DataSource) {
    this.dialect = dialectFor(dataSource);
    this.tables = workerTables(dataSource);
  }

  /** The database's time now (epoch ms), as estimated by this process (see DatabaseClock). */
  databaseNow(): Promise<number> {
    return databaseClock(this.dataSource).current();
  }

  /**
   * Takes the prune turn `slotAt` of turn row `name` (a row of the schedules table, as a recurring
   * event's): true when this call moved the row's last slot forward to `slotAt`, false when another
   * replica (or this one) already took this slot or a later one. The UPDATE commits on its own, so a
   * replica that dies after it merely loses its turn: nothing stays locked or leased.
   */
  async takeTurn(name: string, slotAt: number): Promise<boolean> {
    if (!this.turnRows.has(name)) {
      await ensureScheduleRow(this.dataSource, name);
      this.turnRows.add(name);
    }
    const statement = takePruneTurnStatement(this.tables.schedules, name, slotAt, Date.now());
    const taken = (await this.dialect.execute(statement)).affected > 0;
    // Checked again next time: a turn row that was deleted (tables emptied by hand) is created anew
    // instead of leaving every replica without turns.
    if (!taken) this.turnRows.delete(name);
    return taken;
  }

  /** Deletes up to `limit` rows older than `maxAgeMs` on the database's clock; resolves to how many. */
  async deleteOlderThan(scope: QueueRowScope | PrunableTable, maxAgeMs: number, limit: number): Promise<number> {
    const table = this.tables[typeof scope === 'string' ? scope : scope.table];
    return (await this.dialect.execute(pruneOlderThanStatement(this.dialect, table, scope, maxAgeMs, limit))).affected;
  }

  /** The first row of the scope beyond its newest `maxCount` (by time, then id), or undefined: nothing to prune. */
  async cutoff(scope: QueueRowScope, maxCount: number): Promise<RowCutoff | undefined> {
    const [row] = await this.dialect.query(cutoffStatement(this.tables[scope.table], scope, maxCount));
    return row === undefined ? undefined : { at: Number(row.cutoff_at), id: row.cutoff_id };
  }

  /** Deletes up to `limit` rows of the scope at or before `cutoff`; resolves to how many. */
  async deleteUpTo(scope: QueueRowScope, cutoff: RowCutoff, limit: number): Promise<number> {
    const table = this.tables[scope.table];
    return (await this.dialect.execute(pruneUpToStatement(this.dialect, table, scope, cutoff, limit))).affected;
  }
}
