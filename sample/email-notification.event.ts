import { Inject } from '@nestjs/common';
import { BaseEvent, QueueEvent } from '../lib/index.js';
import { MailService } from './mail.service.js';

export interface EmailNotificationPayload {
  userId: string;
  message: string;
}

/** Mails a user; queued on 'email-queue' so the HTTP request returns before the mail goes out. */
@QueueEvent('email-queue')
export class EmailNotificationEvent extends BaseEvent<EmailNotificationPayload> {
  // Events are rebuilt from stored rows, so Nest never constructs them: the worker fills this
  // property from the container right before execute().
  @Inject(MailService) private readonly mail!: MailService;

  async execute(): Promise<void> {
    const { userId, message } = this.getPayload();
    await this.mail.send(emailOf(userId), message);
  }
}

/** Where a user's mail goes; a real app would look the address up. */
export function emailOf(userId: string): string {
  return `user-${userId}@example.com`;
}
