import type { QueueStatistics } from '../interfaces/failed-workers.interface.js';

/** The statistics of a queue without rows. */
export function emptyStatistics(queueName: string): QueueStatistics {
  return { queueName, pending: 0, due: 0, running: 0, delayed: 0, failed: 0, oldestDueAgeMs: null, paused: false };
}
