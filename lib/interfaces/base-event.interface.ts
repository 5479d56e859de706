/**
 * What every event offers (BaseEvent implements it). The layers below the event model (interfaces,
 * storage, lifecycle) speak of events through this shape, never through the class.
 */
export interface IBaseEvent<TPayload = unknown> {
  /** Does the work; `signal` is aborted on timeout and on cancel. */
  execute(signal?: AbortSignal): Promise<void> | void;
  /** The queue this event is stored on, or undefined to run it synchronously at dispatch. */
  getQueueName(): string | undefined;
  getPayload(): TPayload;
  /** The registered name stored with each row. */
  getName(): string;
}

/** A concrete event class. */
export type EventClass<TEvent extends IBaseEvent = IBaseEvent> = new (payload: never) => TEvent;
