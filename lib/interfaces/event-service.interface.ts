import type { BaseEvent } from '../events/base-event.js';
import type { QueueEventOptions } from './queue-event-options.interface.js';
import type { TSerializableValues } from './worker-attributes.interface.js';

/** What WorkerService needs of an event service: dispatch, and turning a stored row back into an event. */
export interface IEventService {
  /** Stores a queued event (resolves to its row id) or runs an unqueued one at once (resolves to undefined). */
  dispatch(event: BaseEvent): Promise<string | undefined>;
  /** Rebuilds a registered event from its stored name and payload, dependencies injected. Throws UnknownEventError. */
  createEvent(eventName: string, payload: TSerializableValues | null): BaseEvent;
  /** Options declared with @QueueEvent() for that name (they win over the queue's options). */
  getEventOptions(eventName: string): QueueEventOptions | undefined;
}
