import { BadRequestException, Body, Controller, Get, Post } from '@nestjs/common';
import { EventService } from '../lib/index.js';
import { type Delivery, PartnerApiService } from './partner-api.service.js';
import { WebhookDeliveryEvent } from './webhook-delivery.event.js';

/** Queues webhooks to partners; `https://unreachable.example/…` fails, to show retries and the failed store. */
@Controller('webhooks')
export class WebhooksController {
  constructor(
    private readonly events: EventService,
    private readonly partner: PartnerApiService,
  ) {}

  /** POST /webhooks { url, body? } — answers with the queued event's id. */
  @Post()
  async deliver(@Body() request: { url?: unknown; body?: unknown } | undefined): Promise<{ id: string | undefined }> {
    const url = request?.url;
    if (typeof url !== 'string' || !/^https?:\/\//.test(url) || !URL.canParse(url)) {
      throw new BadRequestException({ error: 'url must be an http(s) URL' });
    }
    return { id: await this.events.dispatch(new WebhookDeliveryEvent({ url, body: request?.body ?? null })) };
  }

  @Get('delivered')
  delivered(): Delivery[] {
    return this.partner.delivered;
  }
}
