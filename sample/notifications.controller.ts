import { BadRequestException, Body, Controller, Get, Post } from '@nestjs/common';
import { EventService } from '../lib/index.js';
import { EmailNotificationEvent, type EmailNotificationPayload } from './email-notification.event.js';
import { MailService, type SentMail } from './mail.service.js';

@Controller()
export class NotificationsController {
  constructor(
    private readonly events: EventService,
    private readonly mail: MailService,
  ) {}

  /** Queues the mail and answers at once; a worker sends it (see GET /mail/sent). */
  @Post('notifications')
  async notify(@Body() body: Partial<EmailNotificationPayload> | undefined): Promise<{ id: string | undefined }> {
    const { userId, message } = body ?? {};
    // Checked here because a bad payload would otherwise only fail later, on the worker, retries and all.
    if (typeof userId !== 'string' || userId === '' || typeof message !== 'string' || message === '') {
      throw new BadRequestException({ error: 'userId and message must be non-empty strings' });
    }
    const id = await this.events.dispatch(new EmailNotificationEvent({ userId, message }));
    return { id };
  }

  @Get('mail/sent')
  sent(): SentMail[] {
    return this.mail.sent;
  }
}
