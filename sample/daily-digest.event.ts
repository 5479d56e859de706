import { Inject } from '@nestjs/common';
import { BaseEvent, QueueEvent } from '../lib/index.js';
import { MailService } from './mail.service.js';

export interface DailyDigestPayload {
  /** The day the digest covers (YYYY-MM-DD); a string because payloads must survive JSON. */
  date: string;
}

export const DIGEST_RECIPIENT = 'admin@example.com';

/** The cron's work, queued so that a slow digest never delays the schedule or an HTTP request. */
@QueueEvent('maintenance-queue')
export class DailyDigestEvent extends BaseEvent<DailyDigestPayload> {
  @Inject(MailService) private readonly mail!: MailService;

  async execute(): Promise<void> {
    await this.mail.send(DIGEST_RECIPIENT, `Daily digest for ${this.getPayload().date}`);
  }
}
