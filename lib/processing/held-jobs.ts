import { describeError } from '../errors/describe-error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import { MAX_TIMER_MS } from '../worker.defaults.js';
import { processingMessages as messages } from '../worker.messages.js';
import type { JobOutcome } from './job-attempt.js';
import type { OutcomeRecorder } from './outcome-recorder.js';

/**
 * The jobs a run of a limited queue holds: claimed, and their outcome not yet recorded (or they given
 * back). Each holds a slot in the database until then, so the run claims at most its concurrency minus
 * what it holds, and claims again when one is let go.
 */
export class HeldJobs {
  private count = 0;
  private waiters: (() => void)[] = [];

  get held(): number {
    return this.count;
  }

  take(count: number): void {
    this.count += count;
  }

  letGo(count: number): void {
    if (count <= 0) return;
    this.count -= count;
    this.notify();
  }

  /** Ends every wait now (a job let go, shutdown, a wake-up). */
  notify(): void {
    for (const waiter of this.waiters.splice(0)) waiter();
  }

  /** Resolves at the next notify() (a job let go, shutdown), or after `ms` when given. */
  async change(ms?: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.waiters.push(resolve);
      if (ms !== undefined) timer = setTimeout(resolve, Math.min(Math.max(ms, 1), MAX_TIMER_MS));
    });
    clearTimeout(timer);
  }

  /** Resolves once no job is held: every outcome recorded, every unstarted job given back. */
  async drained(): Promise<void> {
    while (this.count > 0) await this.change();
  }
}

/**
 * Records a limited run's outcomes as they come instead of batch by batch: a finished job's row, and
 * so its slot, is let go at once, not when the slowest job of its claim ends. Outcomes that finish
 * while a record is under way are written together by the next one, so a busy run still writes in
 * groups, one record at a time as the plain path does.
 */
export class OutcomeStream {
  private pending: { outcome: JobOutcome; recorded: () => void }[] = [];
  private flushing?: Promise<void>;

  constructor(
    private readonly recorder: OutcomeRecorder,
    private readonly logger: ILoggerService,
    private readonly queueName: string,
  ) {}

  /** Resolves once the outcome is recorded (or its record failed, which is logged: the row stays leased). */
  record(outcome: JobOutcome): Promise<void> {
    return new Promise((recorded) => {
      this.pending.push({ outcome, recorded });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const group = this.pending.splice(0);
        try {
          await this.recorder.recordBatch(group.map(({ outcome }) => outcome));
        } catch (error) {
          this.logger.error(messages.unexpected(this.queueName, describeError(error)));
        } finally {
          for (const { recorded } of group) recorded();
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }
}
