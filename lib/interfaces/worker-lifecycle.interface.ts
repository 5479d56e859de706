import type { IBaseEvent } from './base-event.interface.js';
import type { IWorkerAttributes } from './worker-attributes.interface.js';

/** Moments of an event's life that hooks can observe. */
export type WorkerLifecycleEventName = 'dispatched' | 'completed' | 'failed' | 'retrying' | 'cancelled';
export const WORKER_LIFECYCLE_EVENT_NAMES: readonly WorkerLifecycleEventName[] = [
  'dispatched',
  'completed',
  'failed',
  'retrying',
  'cancelled',
];

/** What a hook receives. */
export interface WorkerLifecycleEvent {
  name: WorkerLifecycleEventName;
  queueName: string;
  eventName: string;
  /** The row's attributes (for 'dispatched': as stored; otherwise as claimed, attempts included). */
  attributes: IWorkerAttributes;
  /** The event instance, when one was built (not for an unknown event name or a corrupt payload). */
  event?: IBaseEvent;
  /** How long the attempt ran (completed, failed, retrying; cancelled when it had started). */
  durationMs?: number;
  /** Why the attempt failed (failed, retrying). */
  error?: Error;
}

export type WorkerLifecycleListener = (event: WorkerLifecycleEvent) => void | Promise<void>;
