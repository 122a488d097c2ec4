/** Small statistics helpers shared by the benchmarks. */

/** The q-quantile (0..1) of the samples, nearest-rank; NaN when empty. */
export function quantile(samples: number[], q: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** Rounds to `digits` decimals, for printing. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Tracks the peak resident set size while a benchmark runs. */
export function rssSampler(intervalMs = 100): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss) / (1024 * 1024);
    },
  };
}

/** Sum of every sample of a prom-client metric in `registry` (0 when absent). */
export async function metricTotal(registry: { getSingleMetric(name: string): { get(): Promise<{ values: { value: number }[] }> } | undefined }, name: string): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
}

/**
 * Polls `done()` every 10 ms until it reaches `total` and returns the
 * steady-state rate window, with the number of items finished in that
 * window and the CPU time this process used in it. Without `joined`, the
 * window starts at the first poll that saw progress (so group join and the
 * first batch are left out). With it, at the first poll where `joined()`
 * is true (the consumer group was joined; nothing is finished yet), so the
 * window counts every item: a consumer that works on several partitions'
 * large batches at once finishes its first batch late and the others soon
 * after, and a window from its first finished batch would count their work
 * without its time.
 */
export async function steadyState(done: () => Promise<number>, total: number, joined?: () => boolean | Promise<boolean>): Promise<{ items: number; seconds: number; cpuUs: number }> {
  let first: { at: number; done: number; cpu: NodeJS.CpuUsage } | undefined;
  for (;;) {
    const n = await done();
    const now = performance.now();
    if (!first && (joined ? await joined() : n > 0)) first = { at: now, done: n, cpu: process.cpuUsage() };
    if (n >= total) {
      const cpu = process.cpuUsage(first!.cpu);
      return { items: total - first!.done, seconds: (now - first!.at) / 1000, cpuUs: cpu.user + cpu.system };
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}
