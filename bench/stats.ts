import { readFileSync } from 'node:fs';

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

/** Sum of the samples of a prom-client metric in `registry` whose labels include `labels` (0 when absent). */
export async function metricWhere(
  registry: { getSingleMetric(name: string): { get(): Promise<{ values: { value: number; labels: Partial<Record<string, string | number>> }[] }> } | undefined },
  name: string,
  labels: Record<string, string>,
): Promise<number> {
  const m = await registry.getSingleMetric(name)?.get();
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)).reduce((s, v) => s + v.value, 0);
}

/**
 * Fails the bench when a consumer dead-lettered any record: its
 * `<prefix>records_total` counts dead-lettered records too, so a rate taken
 * from it would count records that were refused, not processed.
 */
export async function requireNoDeadLetters(registry: Parameters<typeof metricWhere>[0], metric: string, what: string): Promise<void> {
  const dead = await metricWhere(registry, metric, { outcome: 'dead_lettered' });
  if (dead > 0) throw new Error(`${what} dead-lettered ${dead} records (${metric}{outcome="dead_lettered"}): the rate would count refused records`);
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
 *
 * Throws when `total` is not reached within `deadlineMs` of the call (a
 * stalled service would otherwise hold the bench forever), and when the
 * window holds no items or no time (the work finished between two polls,
 * or before the window opened): a rate from it would be NaN or infinite.
 */
export async function steadyState(
  done: () => Promise<number>,
  total: number,
  joined?: () => boolean | Promise<boolean>,
  deadlineMs = STEADY_STATE_DEADLINE_MS,
): Promise<{ items: number; seconds: number; cpuUs: number; machine: MachineCpu | undefined }> {
  const deadline = performance.now() + deadlineMs;
  let first: { at: number; done: number; cpu: NodeJS.CpuUsage; machine: MachineCpu | undefined } | undefined;
  for (;;) {
    const n = await done();
    const now = performance.now();
    if (!first && (joined ? await joined() : n > 0)) first = { at: now, done: n, cpu: process.cpuUsage(), machine: machineCpu() };
    if (n >= total) {
      if (!first) throw new Error(`steadyState: all ${total} items finished before the window opened${joined ? ' (the consumer had not joined)' : ''}`);
      const items = total - first.done;
      const seconds = (now - first.at) / 1000;
      if (items <= 0 || seconds <= 0) throw new Error(`steadyState: no measurable window (${items} items in ${seconds} s): the work finished before the window opened or between two polls`);
      const cpu = process.cpuUsage(first.cpu);
      const end = machineCpu();
      const machine = first.machine && end ? { busyUs: end.busyUs - first.machine.busyUs, totalUs: end.totalUs - first.machine.totalUs } : undefined;
      return { items, seconds, cpuUs: cpu.user + cpu.system, machine };
    }
    if (now > deadline) throw new Error(`steadyState: ${n} of ${total} items finished within ${deadlineMs} ms${first || !joined ? '' : ' (the consumer never joined)'}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** steadyState's default deadline: 10 minutes, several times the longest window a bench measures on this machine. */
export const STEADY_STATE_DEADLINE_MS = 600_000;

/** CPU time of the whole machine, all cores (every process: the services under test too). */
export interface MachineCpu {
  /** Time the cores were busy (not idle, not waiting for I/O), µs. */
  busyUs: number;
  /** All time of all cores, µs. */
  totalUs: number;
}

/**
 * The machine's CPU counters from /proc/stat (Linux; undefined elsewhere).
 * The counters tick at USER_HZ (100/s), so a window needs a few seconds to
 * be read to within a percent.
 */
export function machineCpu(): MachineCpu | undefined {
  let line: string | undefined;
  try {
    line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  } catch {
    return undefined;
  }
  const ticks = line?.startsWith('cpu ') ? line.trim().split(/\s+/).slice(1, 9).map(Number) : [];
  if (ticks.length < 8 || ticks.some((t) => !Number.isFinite(t))) return undefined;
  const [user, nice, system, idle, iowait, irq, softirq, steal] = ticks as [number, number, number, number, number, number, number, number];
  const tickUs = 1_000_000 / 100;
  const busy = user + nice + system + irq + softirq + steal;
  return { busyUs: busy * tickUs, totalUs: (busy + idle + iowait) * tickUs };
}
