import { Injectable, Logger } from '@nestjs/common';
import { Cron, CronExpression } from '@nestjs/schedule';
import { EventService } from '../lib/index.js';
import { DailyDigestEvent } from './daily-digest.event.js';
import { errorMessage } from './error-message.js';

/** Name of the cron job in SchedulerRegistry, so it can be looked up, stopped or inspected. */
export const DIGEST_CRON_JOB = 'daily-digest';

/**
 * The seed's "Cron Job Integration", turned around: WorkerModule already polls the queues, so the
 * cron only dispatches, and the digest itself runs on a worker with retries.
 */
@Injectable()
export class DigestScheduler {
  private readonly logger = new Logger(DigestScheduler.name);

  constructor(private readonly events: EventService) {}

  // Once a day, as its name says (the queue report shows a recurring event every 5 minutes).
  @Cron(CronExpression.EVERY_DAY_AT_7AM, { name: DIGEST_CRON_JOB })
  async dispatchDigest(): Promise<string | undefined> {
    try {
      const id = await this.events.dispatch(new DailyDigestEvent({ date: new Date().toISOString().slice(0, 10) }));
      this.logger.log(`Queued daily digest (row ${id})`);
      return id;
    } catch (error) {
      // @nestjs/schedule would only log a rejection without context; say which job failed.
      this.logger.error(
        `Could not queue the daily digest: ${errorMessage(error)}`,
        error instanceof Error ? error.stack : undefined,
      );
      return undefined;
    }
  }
}
