import { Inject, Injectable } from '@nestjs/common';
import { BaseEvent, QueueEvent } from '../lib/index.js';

export interface AccountSyncPayload {
  userId: string;
  /** What changed since the last sync (the last dispatch of a burst wins: see AccountsController). */
  fields: string[];
}

/** One sync as the sample's stand-in for a CRM records it: when it ran, for whom. */
export interface SyncRun {
  userId: string;
  fields: string[];
  startedAt: number;
  endedAt: number;
}

/** Records the syncs, so the sample (and its tests) can show that one user's syncs never overlap. */
@Injectable()
export class AccountSyncLog {
  readonly runs: SyncRun[] = [];
}

/**
 * Pushes a user's profile to a CRM that refuses two writes of one account at once. The queue has
 * `keyConcurrency: 1` and the key is the user id, so at most one sync per user runs at a time across
 * every replica, while syncs of different users run side by side (and take turns: a user with a
 * thousand pending syncs never holds back the others).
 */
@QueueEvent('account-sync-queue', { concurrencyKey: (payload: AccountSyncPayload) => payload.userId })
export class AccountSyncEvent extends BaseEvent<AccountSyncPayload> {
  @Inject(AccountSyncLog) private readonly log!: AccountSyncLog;

  async execute(): Promise<void> {
    const { userId, fields } = this.getPayload();
    const startedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 200)); // the CRM's round trip
    this.log.runs.push({ userId, fields, startedAt, endedAt: Date.now() });
  }
}
