import type { Registry } from 'prom-client';

/** A histogram's count, sum and cumulative bucket counts (by upper bound, +Inf left out) read from a registry. */
export async function readHistogram(registry: Registry, name: string): Promise<{ count: number; sum: number; buckets: Map<number, number> }> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name} in the registry`);
  const values = (await metric.get()).values as { metricName?: string; labels: Record<string, string | number>; value: number }[];
  const value = (suffix: string) => values.find((v) => v.metricName === `${name}${suffix}`)?.value ?? Number.NaN;
  const buckets = new Map<number, number>();
  for (const v of values) if (v.metricName === `${name}_bucket` && v.labels.le !== '+Inf') buckets.set(Number(v.labels.le), v.value);
  return { count: value('_count'), sum: value('_sum'), buckets };
}
