import { BadRequestException, Body, Controller, Get, Param, Post } from '@nestjs/common';
import { EventService, WorkerError } from '../lib/index.js';
import { AccountSyncEvent, AccountSyncLog, type SyncRun } from './account-sync.event.js';

/** Profile changes queue a CRM sync per user: debounced, one at a time per user (see AccountSyncEvent). */
@Controller('accounts')
export class AccountsController {
  constructor(
    private readonly events: EventService,
    private readonly log: AccountSyncLog,
  ) {}

  /**
   * POST /accounts/:userId/sync { fields } — a burst of edits becomes one sync: while the user's sync
   * waits, the next dispatch replaces its payload and pushes it 2 s back (debounce, same id).
   */
  @Post(':userId/sync')
  async sync(
    @Param('userId') userId: string,
    @Body() body: { fields?: unknown } | undefined,
  ): Promise<{ id?: string }> {
    const fields = body?.fields ?? [];
    if (!Array.isArray(fields) || !fields.every((field) => typeof field === 'string')) {
      throw new BadRequestException({ error: 'fields must be an array of strings' });
    }
    try {
      const event = new AccountSyncEvent({ userId, fields });
      return { id: await this.events.dispatch(event, { uniqueKey: `sync:${userId}`, debounceSeconds: 2 }) };
    } catch (error) {
      // A user id that is no valid key (empty, over 255 characters) is the caller's mistake.
      if (error instanceof WorkerError) throw new BadRequestException({ error: error.message });
      throw error;
    }
  }

  /** GET /accounts/syncs — the syncs that ran, in order. */
  @Get('syncs')
  syncs(): SyncRun[] {
    return this.log.runs;
  }
}
