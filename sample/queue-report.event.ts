import { Inject } from '@nestjs/common';
import { BaseEvent, QueueEvent, type RecurringEventDefinition, WorkerService } from '../lib/index.js';
import { DIGEST_RECIPIENT } from './daily-digest.event.js';
import { MailService } from './mail.service.js';

/** Name of the report's schedule (RecurringEventScheduler.list(), dispatchSlot(), the slot table). */
export const QUEUE_REPORT_SCHEDULE = 'queue-report';

/** Mails the queue statistics; recurs through QUEUE_REPORT (the module's `recurring` option). */
@QueueEvent('maintenance-queue')
export class QueueReportEvent extends BaseEvent<null> {
  @Inject(MailService) private readonly mail!: MailService;
  @Inject(WorkerService) private readonly workers!: WorkerService;

  async execute(): Promise<void> {
    const queues = await this.workers.getQueueStatistics();
    const lines = queues.map((queue) => `${queue.queueName}: ${queue.pending} pending, ${queue.failed} failed`);
    await this.mail.send(DIGEST_RECIPIENT, `Queue report: ${lines.join('; ') || 'no queues'}`);
  }
}

/**
 * Every 5 minutes. However many replicas of the sample run, each slot is dispatched once (the
 * database records the slot with the dispatch), unlike a plain @Cron() that every replica fires.
 * `@RecurringEvent('0 *\/5 * * * *', { name })` on the class would do the same.
 */
export const QUEUE_REPORT: RecurringEventDefinition = {
  event: QueueReportEvent,
  cron: '0 */5 * * * *',
  name: QUEUE_REPORT_SCHEDULE,
};
