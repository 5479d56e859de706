import { BadRequestException, Body, Controller, Get, Inject, Post } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { EventService, WORKER_DATA_SOURCE } from '../lib/index.js';
import { EmailNotificationEvent, type EmailNotificationPayload } from './email-notification.event.js';
import { MailService, type SentMail } from './mail.service.js';

@Controller()
export class NotificationsController {
  constructor(
    private readonly events: EventService,
    private readonly mail: MailService,
    @Inject(WORKER_DATA_SOURCE) private readonly dataSource: DataSource,
  ) {}

  /** Queues the mail and answers at once; a worker sends it (see GET /mail/sent). */
  @Post('notifications')
  async notify(@Body() body: Partial<EmailNotificationPayload> | undefined): Promise<{ id: string | undefined }> {
    const id = await this.events.dispatch(notificationEvent(body));
    return { id };
  }

  /**
   * Queues several mails: all of them, or none when one is invalid. On PostgreSQL and MySQL/MariaDB
   * they are written in one transaction (an application would write its own rows through the same
   * `manager`); SQLite has no transactional dispatch, so there every mail is checked before any is queued.
   */
  @Post('notifications/batch')
  async notifyAll(@Body() body: { notifications?: Partial<EmailNotificationPayload>[] } | undefined): Promise<{ ids: (string | undefined)[] }> {
    const notifications = body?.notifications;
    if (!Array.isArray(notifications)) throw new BadRequestException({ error: 'notifications must be an array' });
    const events = notifications.map(notificationEvent);
    if (this.dataSource.options.type === 'better-sqlite3') {
      const ids: (string | undefined)[] = [];
      for (const event of events) ids.push(await this.events.dispatch(event));
      return { ids };
    }
    const ids = await this.dataSource.transaction(async (manager) => {
      const stored: (string | undefined)[] = [];
      for (const event of events) stored.push(await this.events.dispatch(event, { manager }));
      return stored;
    });
    return { ids };
  }

  @Get('mail/sent')
  sent(): SentMail[] {
    return this.mail.sent;
  }
}

function notificationEvent(body: Partial<EmailNotificationPayload> | undefined): EmailNotificationEvent {
  const { userId, message } = body ?? {};
  // Checked here because a bad payload would otherwise only fail later, on the worker, retries and all.
  if (typeof userId !== 'string' || userId === '' || typeof message !== 'string' || message === '') {
    throw new BadRequestException({ error: 'userId and message must be non-empty strings' });
  }
  return new EmailNotificationEvent({ userId, message });
}
