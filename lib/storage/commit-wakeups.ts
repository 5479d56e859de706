import type { DataSource } from 'typeorm';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import { dialectFor } from './dialects/dialect-for.js';
import { PostgresWakeups, type WakeupHandlers } from './dialects/postgres-wakeups.js';

export type { WakeupHandlers };

/** A listener for the database's announcements of committed rows, which wake the pollers at once. */
export interface CommitWakeups {
  /** Resolves once listening, or once the first attempt failed (it keeps trying in the background). */
  start(handlers: WakeupHandlers): Promise<void>;
  /** True while listening. */
  readonly listening: boolean;
  stop(): Promise<void>;
}

/**
 * The wake-up listener of this DataSource's database, or undefined where it announces nothing
 * (only PostgreSQL does, with LISTEN/NOTIFY): the pollers' intervals are then the only wake-ups.
 */
export function commitWakeupsFor(dataSource: DataSource, logger: ILoggerService): CommitWakeups | undefined {
  // canListen is PostgreSQL's alone (LISTEN/NOTIFY); the listener lives beside its dialect.
  return dialectFor(dataSource).capabilities.canListen ? new PostgresWakeups(dataSource, logger) : undefined;
}
