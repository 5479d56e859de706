import type { QueueEventOptions } from './queue-event-options.interface.js';

export interface QueueEventMetadata extends QueueEventOptions {
  queueName: string;
}
