/** A pool under way: `done` settles once every started item has; takeUnstarted() stops it starting more. */
export interface PoolRun<T> {
  /** Resolves, once every started item has settled, to the items never started (and not taken). */
  done: Promise<T[]>;
  /** The items not started yet, which the pool will now never start (shutdown gives them back at once). */
  takeUnstarted(): T[];
}

/**
 * Runs `work` over `items`, at most `limit` at a time, starting each only while `mayStart()` holds.
 */
export function startPool<T>(
  items: readonly T[],
  limit: number,
  mayStart: () => boolean,
  work: (item: T) => Promise<void>,
): PoolRun<T> {
  let next = 0;
  let end = items.length;
  const lane = async (): Promise<void> => {
    while (next < end && mayStart()) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  // Each unstarted item is handed out once: to takeUnstarted() or to `done`, never to both.
  const takeUnstarted = (): T[] => {
    const taken = items.slice(next, end);
    end = next;
    return taken;
  };
  const lanes = Array.from({ length: Math.min(limit, items.length) }, lane);
  return { done: Promise.all(lanes).then(takeUnstarted), takeUnstarted };
}
