import { BadRequestException, Body, Controller, Get, HttpException, HttpStatus, Post } from '@nestjs/common';
import { EventService, RateLimitTimeoutError, WorkerRateLimiter } from '../lib/index.js';
import { type Delivery, PARTNER_API_LIMITER, PartnerApiService } from './partner-api.service.js';
import { WebhookDeliveryEvent } from './webhook-delivery.event.js';

/** Queues webhooks to partners; `https://unreachable.example/…` fails, to show retries and the failed store. */
@Controller('webhooks')
export class WebhooksController {
  constructor(
    private readonly events: EventService,
    private readonly partner: PartnerApiService,
    private readonly limiter: WorkerRateLimiter,
  ) {}

  /** POST /webhooks { url, body? } — answers with the queued event's id. */
  @Post()
  async deliver(@Body() request: { url?: unknown; body?: unknown } | undefined): Promise<{ id: string | undefined }> {
    return {
      id: await this.events.dispatch(
        new WebhookDeliveryEvent({ url: checkedUrl(request?.url), body: request?.body ?? null }),
      ),
    };
  }

  /**
   * POST /webhooks/now { url, body? } — delivers at once, inside the request, from the same budget as
   * webhook-queue's workers (the partner allows 5 calls a second in all): it waits up to 2 s for a
   * start, then answers 429.
   */
  @Post('now')
  async deliverNow(@Body() request: { url?: unknown; body?: unknown } | undefined): Promise<{ delivered: true }> {
    const url = checkedUrl(request?.url);
    try {
      await this.limiter.take(PARTNER_API_LIMITER, { timeoutMs: 2000 });
    } catch (error) {
      if (error instanceof RateLimitTimeoutError) {
        throw new HttpException({ error: error.message }, HttpStatus.TOO_MANY_REQUESTS);
      }
      throw error;
    }
    await this.partner.post(url, request?.body ?? null);
    return { delivered: true };
  }

  @Get('delivered')
  delivered(): Delivery[] {
    return this.partner.delivered;
  }
}

function checkedUrl(url: unknown): string {
  if (typeof url !== 'string' || !/^https?:\/\//.test(url) || !URL.canParse(url)) {
    throw new BadRequestException({ error: 'url must be an http(s) URL' });
  }
  return url;
}
