import { Logger } from '@nestjs/common';
import { describeError } from '../errors/describe-error.js';
import type { ILoggerService } from '../interfaces/logger.interface.js';
import type { WorkerLifecycleEvent, WorkerLifecycleListener } from '../interfaces/worker-lifecycle.interface.js';

/**
 * The listeners of lifecycle events (the @OnWorkerEvent() methods, metrics). A listener that throws
 * or rejects is logged and skipped: hooks never change what happens to an event. With no listener
 * an emit costs one array check.
 */
export class WorkerLifecycle {
  private readonly listeners: { listener: WorkerLifecycleListener; label: string }[] = [];

  constructor(private logger: ILoggerService = new Logger(WorkerLifecycle.name)) {}

  setLogger(logger: ILoggerService): void {
    this.logger = logger;
  }

  /** Adds a listener; returns the function that removes it. */
  subscribe(listener: WorkerLifecycleListener, label = listener.name || 'listener'): () => void {
    const entry = { listener, label };
    this.listeners.push(entry);
    return () => {
      const index = this.listeners.indexOf(entry);
      if (index >= 0) this.listeners.splice(index, 1);
    };
  }

  get hasListeners(): boolean {
    return this.listeners.length > 0;
  }

  async emit(event: WorkerLifecycleEvent): Promise<void> {
    if (this.listeners.length === 0) return;
    await Promise.all(
      this.listeners.map(async ({ listener, label }) => {
        try {
          await listener(event);
        } catch (error) {
          this.logger.error(
            `Worker lifecycle hook ${label} failed on '${event.name}' of ${event.eventName}: ${describeError(error)}`,
          );
        }
      }),
    );
  }
}
