/**
 * Wake-ups of queues (a PostgreSQL notification that rows were committed): a woken queue's next claim
 * skips the check for due rows, and a run of the queue waiting for its last outcomes to be recorded
 * starts its next pass at once instead.
 */
export class WakeUps {
  private readonly woken = new Set<string>();
  private readonly waiters = new Map<string, () => void>();

  note(queueName: string): void {
    this.woken.add(queueName);
    this.waiters.get(queueName)?.();
  }

  /** True while a wake-up of the queue has not been followed by a claim. */
  has(queueName: string): boolean {
    return this.woken.has(queueName);
  }

  /** Takes the queue's wake-up, if any, for the claim about to be made. */
  take(queueName: string): boolean {
    return this.woken.delete(queueName);
  }

  /** Waits for `recording` to settle; resolves true instead if the queue is woken first. */
  async recordedOrWoken(queueName: string, recording: Promise<void> | undefined): Promise<boolean> {
    if (this.woken.has(queueName)) return true;
    let wake: () => void = () => undefined;
    const woken = new Promise<boolean>((resolve) => (wake = () => resolve(true)));
    this.waiters.set(queueName, wake);
    try {
      return await Promise.race([(recording ?? Promise.resolve()).then(() => false), woken]);
    } finally {
      if (this.waiters.get(queueName) === wake) this.waiters.delete(queueName);
    }
  }
}
