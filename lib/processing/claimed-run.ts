import { EventTimeoutError } from '../errors/worker.error.js';
import { attachProgressSink, detachProgressSink, type ProgressSink } from '../events/event-progress.js';
import type { IBaseEvent } from '../interfaces/base-event.interface.js';

/**
 * One claimed row's attempt, from the claim until its outcome is recorded. cancel() and the heartbeat
 * (a cancel elsewhere, a lost lease) abort it before or while it runs; a timeout aborts it while it
 * runs. The AbortController is made
 * only when the event starts, and the wait for execute() is interrupted through a callback rather
 * than an 'abort' listener: on Node 20 adding and removing AbortSignal listeners costs microseconds
 * each, growing with the number of live signals, which a batch of thousands of rows would pay per row.
 */
export class ClaimedRun implements ProgressSink {
  private controller?: AbortController;
  private interrupt?: (reason: Error) => void;
  private reason?: Error;
  private started = false;
  private finished = false;
  /**
   * The last value execute() reported with reportProgress(), as JSON text, and whether the heartbeat
   * has written it yet: the heartbeat writes unsaved progress with the lease renewal, and the outcome
   * write (history row, failed copy) takes the latest.
   */
  latestProgress?: string;
  progressSaved = true;

  /** True while execute() runs: the process's running count (its worker-process row) counts it. */
  get running(): boolean {
    return this.started && !this.finished;
  }

  /** What the event's reportProgress() hands over (already checked and serialized): kept for the heartbeat. */
  noteProgress(json: string): void {
    this.latestProgress = json;
    this.progressSaved = false;
  }

  /** True once execute() has settled: the attempt is over, only its outcome is left to record. */
  get settled(): boolean {
    return this.finished;
  }

  /** Why the attempt was aborted (EventCancelledError, EventTimeoutError, LeaseLostError), if it was. */
  get abortReason(): Error | undefined {
    return this.reason;
  }

  abort(reason: Error): void {
    if (this.reason) return;
    this.reason = reason;
    this.controller?.abort(reason);
    this.interrupt?.(reason);
  }

  /**
   * Runs `execute(signal)` until it settles or the attempt is aborted (past `timeoutSeconds`, or by a
   * cancel); the attempt then fails with that reason. The event's own code may still be running then:
   * it should stop on the signal. Resolves to what execute() returned (its result, or a snooze).
   */
  async execute(event: IBaseEvent, eventName: string, timeoutSeconds: number | undefined): Promise<unknown> {
    if (this.reason) throw this.reason;
    this.controller = new AbortController();
    const interrupted = new Promise<never>((_, reject) => (this.interrupt = reject));
    const timer =
      timeoutSeconds === undefined
        ? undefined
        : setTimeout(() => this.abort(new EventTimeoutError(eventName, timeoutSeconds)), timeoutSeconds * 1000);
    // reportProgress() finds this run through the event only while execute() runs: a report after
    // the attempt ended (from work the event left behind) has no row to go to.
    attachProgressSink(event, this);
    this.started = true;
    try {
      // race() handles `interrupted` even when it rejects after execute() settled.
      return await Promise.race([event.execute(this.controller.signal), interrupted]);
    } finally {
      detachProgressSink(event, this);
      clearTimeout(timer);
      this.interrupt = undefined;
      this.finished = true;
    }
  }
}
