import type { DataSource } from 'typeorm';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import { capabilitiesOf } from './dialects/dialect-for.js';
import { PostgresWakeups, type WakeupHandlers } from './dialects/postgres-wakeups.js';

/**
 * The questions the layers above storage ask instead of testing the database type. Answered from
 * the dialects' capabilities (data on each dialect), known from the database type alone.
 */

/**
 * Whether a dispatch may join a caller's transaction on this DataSource (see
 * StorageCapabilities.joinsCallerTransaction: not on SQLite). A DataSource of a database this
 * package does not store in is not refused here: dispatch then names the mismatch of the two.
 */
export function joinsCallerTransactions(dataSource: DataSource): boolean {
  return capabilitiesOf(dataSource.options.type)?.joinsCallerTransaction ?? true;
}

/** A listener for the database's announcements of committed rows, which wake the pollers at once. */
export interface CommitWakeups {
  /** Resolves once listening, or once the first attempt failed (it keeps trying in the background). */
  start(handlers: WakeupHandlers): Promise<void>;
  /** True while listening. */
  readonly listening: boolean;
  stop(): Promise<void>;
}

/**
 * The wake-up listener of this DataSource's database, or undefined where it announces nothing: the
 * pollers' intervals are then the only wake-ups. canListen is PostgreSQL's alone (LISTEN/NOTIFY),
 * and its listener lives beside its dialect.
 */
export function commitWakeupsFor(dataSource: DataSource, logger: ILoggerService): CommitWakeups | undefined {
  return capabilitiesOf(dataSource.options.type)?.canListen ? new PostgresWakeups(dataSource, logger) : undefined;
}
