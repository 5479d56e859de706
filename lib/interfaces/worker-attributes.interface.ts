/** What a payload may hold: values that survive a JSON round trip unchanged. */
export type TSerializableValues =
  string | number | boolean | null | TSerializableValues[] | { [key: string]: TSerializableValues | undefined };

/** A stored worker row, as larascript-events defines it (the pending and the failed store share it). */
export interface IWorkerAttributes {
  /** Row id once stored (string on every database). Not in larascript-events: needed to address a row. */
  id?: string;
  payload: TSerializableValues | null;
  /** Attempts started so far, the one in progress included. */
  attempts: number;
  /** Maximum total attempts. */
  retries: number;
  queueName: string;
  eventName: string;
  error?: string;
  failedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
  deletedAt?: Date;
  /**
   * When a new pending row becomes due (delayed dispatch); default its createdAt. Not in larascript-events;
   * only read when a row is created.
   */
  availableAt?: Date;
  /** Lower runs first among the due rows of a queue (default 0). Not in larascript-events. */
  priority?: number;
  /**
   * While a pending or running row of the queue holds this key, dispatching it again adds no row.
   * Not in larascript-events.
   */
  uniqueKey?: string;
  /**
   * Flow control's key (keyConcurrency, keyRateLimit), when the event has one. Pending rows only: the
   * failed store and the history do not keep it. Not in larascript-events.
   */
  concurrencyKey?: string;
}
