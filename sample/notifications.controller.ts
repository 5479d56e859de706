import {
  BadRequestException,
  Body,
  Controller,
  Delete,
  Get,
  Inject,
  NotFoundException,
  Param,
  Post,
  UseGuards,
} from '@nestjs/common';
import type { DataSource } from 'typeorm';
import {
  type CancelledEvent,
  type DispatchOptions,
  EventService,
  InvalidWorkerOptionsError,
  WORKER_DATA_SOURCE,
  WorkerService,
} from '../lib/index.js';
import { AdminTokenGuard } from './admin-token.guard.js';
import { EmailNotificationEvent, type EmailNotificationPayload } from './email-notification.event.js';
import { MailService, type SentMail } from './mail.service.js';

@Controller()
export class NotificationsController {
  constructor(
    private readonly events: EventService,
    private readonly mail: MailService,
    private readonly workers: WorkerService,
    @Inject(WORKER_DATA_SOURCE) private readonly dataSource: DataSource,
  ) {}

  /**
   * Queues the mail and answers at once; a worker sends it (see GET /mail/sent). `urgent: true` goes
   * before the backlog (priority -10); the same `dedupeKey` while one is pending queues it only once.
   */
  @Post('notifications')
  async notify(@Body() body: NotificationRequest | undefined): Promise<{ id: string | undefined }> {
    const options: DispatchOptions = {};
    if (body?.urgent !== undefined) {
      if (typeof body.urgent !== 'boolean') throw new BadRequestException({ error: 'urgent must be a boolean' });
      if (body.urgent) options.priority = -10;
    }
    if (body?.dedupeKey !== undefined) options.uniqueKey = body.dedupeKey as string;
    try {
      return { id: await this.events.dispatch(notificationEvent(body), options) };
    } catch (error) {
      if (error instanceof InvalidWorkerOptionsError) throw new BadRequestException({ error: error.message });
      throw error;
    }
  }

  /** Cancels a queued notification (a running one is aborted and not retried); 404 when none is pending. Operators only. */
  @Delete('notifications/:id')
  @UseGuards(AdminTokenGuard)
  async cancel(@Param('id') id: string): Promise<Pick<CancelledEvent, 'id' | 'wasRunning'>> {
    let cancelled: CancelledEvent | undefined;
    try {
      cancelled = await this.workers.cancel(id);
    } catch (error) {
      if (error instanceof InvalidWorkerOptionsError) throw new BadRequestException({ error: error.message });
      throw error;
    }
    if (!cancelled) throw new NotFoundException({ error: `No pending notification ${id}` });
    return { id: cancelled.id, wasRunning: cancelled.wasRunning };
  }

  /**
   * Queues several mails with one dispatchMany(): all of them, or none when one is invalid, in as few
   * INSERTs as the database allows. On PostgreSQL and MySQL/MariaDB inside the application's own
   * transaction (it would write its own rows through the same `manager`); SQLite has no transactional
   * dispatch, so there dispatchMany() uses a transaction of its own.
   */
  @Post('notifications/batch')
  async notifyAll(
    @Body() body: { notifications?: Partial<EmailNotificationPayload>[] } | undefined,
  ): Promise<{ ids: string[] }> {
    const notifications = body?.notifications;
    if (!Array.isArray(notifications)) throw new BadRequestException({ error: 'notifications must be an array' });
    const events = notifications.map(notificationEvent);
    if (this.dataSource.options.type === 'better-sqlite3') return { ids: await this.events.dispatchMany(events) };
    return { ids: await this.dataSource.transaction((manager) => this.events.dispatchMany(events, { manager })) };
  }

  @Get('mail/sent')
  sent(): SentMail[] {
    return this.mail.sent;
  }
}

interface NotificationRequest extends Partial<EmailNotificationPayload> {
  urgent?: unknown;
  dedupeKey?: unknown;
}

function notificationEvent(body: Partial<EmailNotificationPayload> | undefined): EmailNotificationEvent {
  const { userId, message } = body ?? {};
  // Checked here because a bad payload would otherwise only fail later, on the worker, retries and all.
  if (typeof userId !== 'string' || userId === '' || typeof message !== 'string' || message === '') {
    throw new BadRequestException({ error: 'userId and message must be non-empty strings' });
  }
  return new EmailNotificationEvent({ userId, message });
}
