import { LeaseLostError } from '../errors/worker.error.js';
import { describeError } from '../errors/describe-error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { IWorkerModel } from '../interfaces/worker-model.interface.js';
import type { IWorkerQueueRepository } from '../interfaces/worker-repository.interface.js';
import { processingMessages as messages } from '../worker.messages.js';
import type { ClaimedRun } from './claimed-run.js';

export interface Heartbeat {
  stop(): void;
}

/** How one batch's heartbeat renews, and whom it tells. */
export interface HeartbeatSettings {
  repository: IWorkerQueueRepository;
  queueName: string;
  leaseMs: number;
  intervalMs: number;
  logger: ILoggerService;
  /** A job of this process was cancelled (elsewhere): abort its run, whichever batch it is in. */
  onCancelled(id: string): void;
}

/**
 * Extends the batch's leases every heartbeat while its jobs run, so a long event keeps its row.
 * Renewals are fenced by the lease token: rows already finished, or taken over, are not touched.
 * The progress its runs reported since the last beat is written by the same renewal (coalesced: only
 * the last value of each run, no round trip of its own); a renewal that fails leaves it unsaved, for
 * the next beat.
 * `runOf` holds this batch's runs by row id, not the newest run of each id: a row retried at once may
 * already be claimed again, by a later pass of this process, and that run holds the lease.
 */
export function startHeartbeat(
  jobs: IWorkerModel[],
  runOf: ReadonlyMap<string, ClaimedRun>,
  settings: HeartbeatSettings,
): Heartbeat {
  const { repository, leaseMs, logger, queueName } = settings;
  let renewing = false;
  const beat = async (): Promise<void> => {
    if (renewing) return;
    renewing = true;
    try {
      // Progress reported since the last beat rides on this renewal: many reports, one write of the last.
      const progress = unsavedProgress(runOf);
      const renewal = await repository.renewLeases(jobs, leaseMs, progress.size > 0 ? progress : undefined);
      for (const [id, json] of progress) {
        // Unless the event reported again while the renewal was on its way: that value waits for the next beat.
        const run = runOf.get(id);
        if (run && run.latestProgress === json) run.progressSaved = true;
      }
      const { cancelled, lost } = !renewal || Array.isArray(renewal) ? { cancelled: renewal ?? [], lost: [] } : renewal;
      for (const id of cancelled) settings.onCancelled(id);
      for (const id of lost) {
        // Another worker took the row after the lease expired (this process was paused, or could not
        // renew), or it was deleted: stop the event now instead of letting it run beside the new holder.
        const run = runOf.get(id);
        if (run && !run.settled) run.abort(new LeaseLostError(id));
      }
    } catch (error) {
      logger.warn(messages.notRenewed(queueName, describeError(error)));
    } finally {
      renewing = false;
    }
  };
  const timer = setInterval(() => void beat(), settings.intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * The JSON text of each running event's progress that no renewal has written yet, by row id, up to
 * PROGRESS_TEXT_PER_BEAT characters: a renewal must stay a statement every server takes (mysql2
 * inlines the values, and MySQL refuses a statement over max_allowed_packet), since a renewal that
 * fails costs the leases. What is left waits for the next beat. A settled run's progress is not
 * sent: its outcome write takes it.
 */
function unsavedProgress(runOf: ReadonlyMap<string, ClaimedRun>): Map<string, string> {
  const progress = new Map<string, string>();
  let text = 0;
  for (const [id, run] of runOf) {
    if (run.progressSaved || run.settled || run.latestProgress === undefined) continue;
    if (text > 0 && text + run.latestProgress.length > PROGRESS_TEXT_PER_BEAT) break;
    progress.set(id, run.latestProgress);
    text += run.latestProgress.length;
  }
  return progress;
}

/** Progress text one renewal carries at most (characters; each value is at most MAX_PROGRESS_BYTES). */
const PROGRESS_TEXT_PER_BEAT = 1_000_000;
