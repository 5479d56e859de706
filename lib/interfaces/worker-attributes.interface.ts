/** What a payload may hold: values that survive a JSON round trip unchanged. */
export type TSerializableValues =
  string | number | boolean | null | TSerializableValues[] | { [key: string]: TSerializableValues | undefined };

/** A stored worker row, as the seed defines it (the pending and the failed store share it). */
export interface IWorkerAttributes {
  /** Row id once stored (string on every database). Not in the seed: needed to address a row. */
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
   * When a new pending row becomes due (delayed dispatch); default its createdAt. Not in the seed;
   * only read when a row is created.
   */
  availableAt?: Date;
  /** Lower runs first among the due rows of a queue (default 0). Not in the seed. */
  priority?: number;
  /** While a pending or running row of the queue holds this key, dispatching it again adds no row. Not in the seed. */
  uniqueKey?: string;
}
