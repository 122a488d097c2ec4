/**
 * `npm run bench -- hotstore-parts`: INSERTs per second the hot store sends to ClickHouse at a trickle.
 *
 * Every INSERT makes one part per table, which ClickHouse merges in the
 * background; at a low, steady rate the number of INSERTs (not their size)
 * is what costs. Three HotstoreServices with default settings, one after
 * the other, each on its own fresh 6-partition topic (the default layout), are
 * fed BENCH_RATE events/s (default 100: executions of four events) for
 * BENCH_SECONDS (default 30):
 * - baseline: AUDITLINE_HOTSTORE_COALESCE_BELOW=0, every partition's batch
 *   written on its own; run before and after the service, the mean of the
 *   two is the figure (`baseline_runs_inserts_per_s` shows both);
 * - service: the default, small batches of one fetch share their INSERTs
 *   (consumers/hotstore/coalescing-writer.ts).
 * INSERTs are counted from auditline_hotstore_insert_duration_seconds over
 * each run's window, from its first publish until every event is stored
 * (the drain after the last publish included, INSERTs and time). Every
 * run must store every event. Last line: one JSON object (`ratio` =
 * service INSERTs/s ÷ baseline INSERTs/s; lower is better).
 */
import { Registry } from 'prom-client';
import { createClickHouse } from '../core/clients/clickhouse.js';
import { createLogger } from '../core/logger.js';
import { HOTSTORE_TABLES, HotstoreService, loadHotstoreConfig } from '../consumers/hotstore/index.js';
import { buildExecution } from '../test/helpers/hotstore-fixtures.js';
import { createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, endpoints, hotstoreEnv, publish, storedEvents } from '../test/helpers/hotstore-stack.js';
import type { AuditEvent } from '../schemas/index.js';
import { Cleanup, deleteSubjects, withDeadline } from './lib/run.js';
import { metricTotal, round } from './stats.js';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const PARTITIONS = 6;
const say = (m: string) => process.stderr.write(`${m}\n`);

const client = createClickHouse(endpoints.clickhouse);

async function insertCount(registry: Registry): Promise<number> {
  const m = await registry.getSingleMetric('auditline_hotstore_insert_duration_seconds')?.get();
  return (m?.values ?? []).filter((v) => (v as { metricName?: string }).metricName?.endsWith('_count')).reduce((s, v) => s + v.value, 0);
}

async function trickle(label: string, coalesceBelow: number): Promise<{ events: number; seconds: number; inserts: number }> {
  const cleanup = new Cleanup();
  try {
    const database = await createHotstoreDatabase(client, 'bench_hs_parts');
    cleanup.add(`drop database ${database}`, () => client.command({ query: `DROP DATABASE IF EXISTS ${database}` }));
    const names = await createHotstoreTopics(`bench-parts-${label}`, PARTITIONS);
    cleanup.add('drop topics and group', () => dropHotstoreTopics(names, [names.group]));
    cleanup.add('delete registry subject', () => deleteSubjects(endpoints.registry, [names.topic]));
    const registry = new Registry();
    const config = loadHotstoreConfig({ ...process.env, ...hotstoreEnv(names, database, { AUDITLINE_HOTSTORE_COALESCE_BELOW: String(coalesceBelow) }) });
    const service = new HotstoreService(config, { logger: createLogger(`bench-parts-${label}`, 'silent'), registry });
    cleanup.add('service stop', () => service.stop());
    const stop = new AbortController();
    await withDeadline(`the ${label} hot store start`, 60_000, service.start(stop.signal), () => stop.abort());
    let sent = 0;
    // The window runs from the first publish until every event is stored: the INSERTs of the drain after the
    // last publish are counted, so their time is too.
    const insertsBefore = await insertCount(registry);
    const began = performance.now();
    // Publishing in ticks of 100 ms keeps the rate steady; each tick's events are one produce request.
    for (let tick = 1; performance.now() - began < SECONDS * 1_000; tick++) {
      const events: AuditEvent[] = [];
      while (sent + events.length < (RATE * tick) / 10) {
        events.push(...buildExecution({ workflowId: `WF-${tick % 7}`, status: tick % 5 === 0 ? 'failed' : 'success', startedAgoMs: 1_000, steps: [{ name: 'fetch', status: 'success' }], decisions: [{ step: 1, condition: 'amount > 100', taken: 'auto', reason: 'small amount' }] }));
      }
      await publish(names.topic, events);
      sent += events.length;
      const wait = began + tick * 100 - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    const publishSeconds = (performance.now() - began) / 1_000;
    for (const deadline = Date.now() + 60_000; (await metricTotal(registry, 'auditline_hotstore_records_total')) < sent; ) {
      if (Date.now() > deadline) throw new Error(`${label}: the service stored ${await metricTotal(registry, 'auditline_hotstore_records_total')} of ${sent} events within 60 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const seconds = (performance.now() - began) / 1_000;
    const inserts = (await insertCount(registry)) - insertsBefore;
    const stored = await storedEvents(client, database);
    if (stored !== sent) throw new Error(`${label}: ${stored} of ${sent} events are queryable`);
    say(`${label}: ${sent} events published in ${round(publishSeconds, 1)} s, stored after ${round(seconds, 1)} s, ${inserts} INSERTs (${round(inserts / seconds, 1)}/s)`);
    return { events: sent, seconds, inserts };
  } finally {
    await cleanup.run();
  }
}

let result: Record<string, unknown>;
try {
  say(`hotstore-parts bench: ${RATE} events/s for ${SECONDS} s on ${PARTITIONS} partitions, each run`);
  // The baseline runs before and after the service (the mean is the figure), so a change in the shared machine's
  // load during the run weighs on both sides alike.
  const before = await trickle('baseline', 0);
  const svc = await trickle('service', loadHotstoreConfig(process.env).coalesceBelow);
  const after = await trickle('baseline-after', 0);
  const baseRates = [before.inserts / before.seconds, after.inserts / after.seconds];
  const baseRate = (baseRates[0]! + baseRates[1]!) / 2;
  result = {
    bench: 'hotstore-parts',
    rate: RATE,
    seconds: SECONDS,
    partitions: PARTITIONS,
    flush_ms: loadHotstoreConfig(process.env).runtime.flushMs,
    events: svc.events,
    inserts_per_s: round(svc.inserts / svc.seconds, 1),
    baseline_inserts_per_s: round(baseRate, 1),
    baseline_runs_inserts_per_s: baseRates.map((r) => round(r, 1)),
    ratio: round(svc.inserts / svc.seconds / baseRate, 3),
    inserts_per_table_per_s: round(svc.inserts / svc.seconds / HOTSTORE_TABLES.length, 1),
  };
} finally {
  await client.close();
}
console.log(JSON.stringify(result));
