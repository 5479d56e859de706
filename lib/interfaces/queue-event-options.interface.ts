/** Options given to `@QueueEvent(queue, options)`; they win over the queue's options. */
export interface QueueEventOptions {
  /** Stable registered name (stored in each row); defaults to the class name. */
  name?: string;
  retries?: number;
  runAfterSeconds?: number;
}
