import { Inject } from '@nestjs/common';
import { BaseEvent, QueueEvent } from '../lib/index.js';
import { PartnerApiService } from './partner-api.service.js';

export interface WebhookDeliveryPayload {
  url: string;
  body: unknown;
}

/**
 * Posts a webhook to a partner. A delivery that fails is tried again (webhook-queue: 3 attempts, 2 s
 * apart) and then lands in the failed store, where an operator can look at it and retry it.
 */
@QueueEvent('webhook-queue')
export class WebhookDeliveryEvent extends BaseEvent<WebhookDeliveryPayload> {
  @Inject(PartnerApiService) private readonly partner!: PartnerApiService;

  async execute(): Promise<void> {
    const { url, body } = this.getPayload();
    await this.partner.post(url, body);
  }
}
