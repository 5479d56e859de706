/**
 * Runs `work` over `items`, at most `limit` at a time, starting each only while `mayStart()` holds.
 * Resolves, once every started item has settled, to the items never started.
 */
export async function runPool<T>(
  items: readonly T[],
  limit: number,
  mayStart: () => boolean,
  work: (item: T) => Promise<void>,
): Promise<T[]> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length && mayStart()) {
      const item = items[next++] as T;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return items.slice(next);
}
