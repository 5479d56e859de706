import type { IBaseEvent } from './base-event.interface.js';
import type { IWorkerAttributes } from './worker-attributes.interface.js';

/** Moments of an event's life that hooks can observe. */
export type WorkerLifecycleEventName = 'dispatched' | 'completed' | 'failed' | 'retrying' | 'cancelled' | 'snoozed';
export const WORKER_LIFECYCLE_EVENT_NAMES: readonly WorkerLifecycleEventName[] = [
  'dispatched',
  'completed',
  'failed',
  'retrying',
  'cancelled',
  'snoozed',
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
  /** How long the attempt ran (completed, failed, retrying, snoozed; cancelled when it had started). */
  durationMs?: number;
  /** Why the attempt failed (failed, retrying). */
  error?: Error;
  /** 'failed': execute() threw UnrecoverableError, so the event failed whatever attempts it had left. */
  permanent?: boolean;
  /** 'snoozed': when the event is due again. */
  dueAt?: Date;
}

export type WorkerLifecycleListener = (event: WorkerLifecycleEvent) => void | Promise<void>;
