import { Injectable, Logger } from '@nestjs/common';

export interface SentMail {
  to: string;
  message: string;
}

/**
 * Stands in for a real mail transport: keeping what was "sent" in memory lets a person (GET
 * /mail/sent) and the e2e test see that a queued event really ran.
 */
@Injectable()
export class MailService {
  private readonly logger = new Logger(MailService.name);
  readonly sent: SentMail[] = [];

  async send(to: string, message: string): Promise<void> {
    this.sent.push({ to, message });
    this.logger.log(`Mail to ${to}: ${message}`);
  }
}
