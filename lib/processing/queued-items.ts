import { describeError } from '../errors/describe-error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { IWorkerQueueRepository } from '../interfaces/worker-repository.interface.js';
import { QUEUED_ITEMS_COUNT_LIMIT } from '../worker.defaults.js';
import { processingMessages as messages } from '../worker.messages.js';

/**
 * Logs larascript-events' "Queued items: N": this batch plus what is still due at `countBy`, or the
 * batch alone when it took everything due (`countBy` undefined).
 */
export async function logQueuedItems(
  logger: ILoggerService,
  repository: IWorkerQueueRepository,
  queueName: string,
  claimed: number,
  countBy: Date | undefined,
): Promise<void> {
  if (countBy === undefined) {
    logger.log(messages.queuedItems(claimed));
    return;
  }
  try {
    // Counted no further than QUEUED_ITEMS_COUNT_LIMIT: the first batch waits for this count, and a
    // backlog of a million rows need not be read to say that there is one.
    const stillDue = await repository.countDueWorkers(queueName, countBy, QUEUED_ITEMS_COUNT_LIMIT);
    logger.log(messages.queuedItems(claimed + stillDue, stillDue >= QUEUED_ITEMS_COUNT_LIMIT));
  } catch (error) {
    // Only the log line is lost: the claimed batch runs all the same.
    logger.warn(messages.notCounted(queueName, describeError(error)));
  }
}
