/**
 * `items` in runs, in order, each as long as the sizes of its items (by
 * `sizeOf`) stay within `max`; an item above `max` goes alone. None empty.
 * Serves the Kafka send limits (record-size.ts) and the URL limit of
 * ClickHouse list parameters (core/clients/clickhouse.ts).
 */
export function splitBySize<T>(items: readonly T[], sizeOf: (item: T) => number, max: number): T[][] {
  const runs: T[][] = [];
  let current: T[] = [];
  let size = 0;
  for (const item of items) {
    const n = sizeOf(item);
    if (current.length > 0 && size + n > max) {
      runs.push(current);
      current = [];
      size = 0;
    }
    current.push(item);
    size += n;
  }
  if (current.length > 0) runs.push(current);
  return runs;
}
