import { Injectable, Logger } from '@nestjs/common';

export interface Delivery {
  url: string;
  body: unknown;
}

/**
 * The partner allows 5 calls a second in all: the limiter (WorkerModule's `rateLimits`) that
 * webhook-queue's workers and POST /webhooks/now both take from, across every replica.
 */
export const PARTNER_API_LIMITER = 'partner-api';

/** Deliveries to this host always fail, so the sample can show retries and the failed store. */
export const UNREACHABLE_HOST = 'unreachable.example';

/**
 * Stands in for an HTTP client of a partner's API (no network in the sample): it records what was
 * delivered, and refuses `https://unreachable.example/…` the way a real client reports a host that
 * does not answer.
 */
@Injectable()
export class PartnerApiService {
  private readonly logger = new Logger(PartnerApiService.name);
  readonly delivered: Delivery[] = [];

  async post(url: string, body: unknown): Promise<void> {
    if (new URL(url).hostname === UNREACHABLE_HOST) throw new Error(`connect ECONNREFUSED ${UNREACHABLE_HOST}:443`);
    this.delivered.push({ url, body });
    this.logger.log(`Delivered webhook to ${url}`);
  }
}
