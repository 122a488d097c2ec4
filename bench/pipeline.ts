/**
 * `npm run bench -- pipeline`: sustained events/s through every consumer
 * service on this machine.
 *
 * The services run as `npm start` runs them (each its own process under the
 * pipeline supervisor) on isolated topics and database. Sample executions
 * (with PII) are published pre-encoded to the raw topic at a fixed rate for
 * a step (BENCH_STEP_S, default 180 s: "lag stays flat for 3 minutes"); the
 * rate rises by half after each step whose summed consumer lag stayed flat,
 * until one does not (or BENCH_MAX_STEPS). Each step reports the rate it
 * published (events sent / seconds of publishing); a step that published
 * less than 98 % of its target is not flat. events_per_s is the published
 * rate of the highest flat step; when no step is flat the JSON line has
 * events_per_s null and `failed`, and the bench exits 1. A probe not
 * queryable within 60 s is counted in `probe_timeouts` (not a freshness
 * sample) and makes its step not flat. During each step: freshness (publish -> queryable in the hot store)
 * of one probe execution per second, and alert latency (publish -> a real
 * webhook receiver) of the same probes through a rule that fires on each,
 * CPU and peak RSS of every service.
 * Baseline, same run: a no-op kafkajs consumer reading the whole raw topic
 * (everything the steps published) from the beginning, timed from its
 * group join to the last record (bench/stats.ts steadyState).
 *
 * Settings: BENCH_START_RATE (events/s, default 400), BENCH_STEP_S,
 * BENCH_MAX_STEPS (default 5).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { Supervisor } from '../cli/pipeline/supervisor.js';
import { createClickHouse } from '../core/clients/clickhouse.js';
import { createKafka } from '../core/clients/kafka.js';
import { loadEndpoints } from '../core/endpoints.js';
import { assetPath } from '../core/paths.js';
import { settingsPrefix } from '../core/service/settings.js';
import { AuditEventCodec, RegistryClient, sampleExecution } from '../schemas/index.js';
import { Receiver } from '../test/helpers/alerts-fixtures.js';
import { createPipelineEnv } from '../test/helpers/pipeline-env.js';
import { tempDir } from '../test/helpers/temp-dir.js';
import { Cleanup, deleteSubjects } from './lib/run.js';
import { drainRate } from './lib/drain.js';
import { quantile, round } from './stats.js';

const { CompressionTypes, logLevel } = kafkajs;
const START_RATE = Number(process.env.BENCH_START_RATE ?? 400);
const STEP_S = Number(process.env.BENCH_STEP_S ?? 180);
const MAX_STEPS = Number(process.env.BENCH_MAX_STEPS ?? 5);
const say = (m: string) => process.stderr.write(`${m}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const endpoints = loadEndpoints();
const kafka = createKafka(endpoints.kafka, undefined, { logLevel: logLevel.NOTHING });
// Alerts: one rule fires for every probe execution, so alert latency is publish -> webhook received.
const receiver = new Receiver();
// Everything the bench makes is removed however it ends (the bucket has Object Lock and stays, as in the tests).
const cleanup = new Cleanup();
await receiver.up();
cleanup.add('webhook receiver down', () => receiver.down());
const PROBE_RULES = `rules:
  - name: probe-started
    kind: match
    severity: info
    channels: [security]
    where: { event: ExecutionStarted, workflow_id: WF-PROBE }
`;
const pipeline = await createPipelineEnv('bench-pipeline', { partitions: 3, webhookUrl: `http://127.0.0.1:${receiver.port}`, rulesYaml: PROBE_RULES });
cleanup.add('drop the pipeline topics, groups and database', () => pipeline.drop());
cleanup.add('delete registry subjects', () => deleteSubjects(endpoints.registry, [pipeline.names.raw, pipeline.names.events]));
/** Publish time of each probe execution, for the alert latency. */
const probeSent = new Map<string, number>();
const { names } = pipeline;
const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), names.raw);
const clickhouse = createClickHouse(endpoints.clickhouse);
cleanup.add('ClickHouse close', () => clickhouse.close());

const supervisor = new Supervisor(pipeline.services, {
  cli: assetPath('dist', 'cli', 'main.js'),
  logDir: path.join(tempDir('auditline-bench-pipeline'), 'logs'),
  env: { ...process.env, ...pipeline.env, ...Object.fromEntries(pipeline.services.map((s) => [`${settingsPrefix(s.name)}LOG_LEVEL`, 'warn'])) },
  onChange: () => undefined,
});

/** Consumer groups and the topic each reads, from the pipeline's settings. */
const groups = pipeline.services.map((s) => ({ service: s.name, group: pipeline.env[`${settingsPrefix(s.name)}GROUP_ID`]!, topic: pipeline.env[`${settingsPrefix(s.name)}TOPIC`]! }));

/** Consumer lag of each service's group (records not yet committed), keyed by service. */
async function lagByService(): Promise<Record<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const lag: Record<string, number> = {};
    for (const g of groups) {
      const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(g.topic), admin.fetchOffsets({ groupId: g.group, topics: [g.topic] })]);
      let sum = 0;
      for (const p of ends) {
        const c = Number(committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? -1);
        sum += Math.max(0, Number(p.high) - Math.max(c, Number(p.low)));
      }
      lag[g.service] = sum;
    }
    return lag;
  } finally {
    await admin.disconnect();
  }
}

const lagTotal = (lag: Record<string, number>) => Object.values(lag).reduce((a, b) => a + b, 0);

async function totalLag(): Promise<number> {
  return lagTotal(await lagByService());
}

/** CPU seconds (user + system) and RSS (MB) of a process, from /proc. */
function procStats(pid: number): { cpuS: number; rssMb: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    return { cpuS: ticks / 100, rssMb: rssKb / 1024 };
  } catch {
    return undefined;
  }
}

/** Least-squares slope (per second) of (t, y) samples. */
function slope(samples: { t: number; y: number }[]): number {
  const n = samples.length;
  const mt = samples.reduce((s, p) => s + p.t, 0) / n;
  const my = samples.reduce((s, p) => s + p.y, 0) / n;
  const num = samples.reduce((s, p) => s + (p.t - mt) * (p.y - my), 0);
  const den = samples.reduce((s, p) => s + (p.t - mt) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

/** Publish -> webhook latencies of the probes published from `since` on. */
function alertLatencies(since: number): number[] {
  const out: number[] = [];
  for (const [id, sent] of probeSent) {
    if (sent < since) continue;
    const got = receiver.requests.find((r) => r.body.includes(id));
    if (got) out.push(got.at - sent);
  }
  return out;
}

interface StepResult {
  /** The rate the step aimed at, events/s. */
  rate: number;
  /** The rate it published: events sent / seconds of publishing. */
  achieved: number;
  alertMs: number[];
  probes: number;
  published: number;
  flat: boolean;
  lagSlope: number;
  lagEnd: number;
  lagByService: Record<string, { end: number; slope: number }>;
  freshnessMs: number[];
  /** Probes not queryable within 60 s of their publish (not freshness samples). */
  probeTimeouts: number;
  services: Record<string, { cpu_pct: number; rss_mb: number }>;
}

async function runStep(rate: number): Promise<StepResult> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const t0 = Date.now();
  const pids = new Map(supervisor.status().map((s) => [s.name, s.pid]));
  const cpu0 = new Map([...pids].map(([n, pid]) => [n, pid ? procStats(pid)?.cpuS ?? 0 : 0]));
  const peakRss = new Map<string, number>();
  const lagSamples: { t: number; y: number; by: Record<string, number> }[] = [];
  const freshnessMs: number[] = [];
  let probeTimeouts = 0;
  let published = 0;
  let running = true;

  let publishedUntil = t0;
  const publisher = (async () => {
    // Every 100 ms, the events due by then, as whole executions (4 events each).
    for (let tick = 1; running; tick++) {
      const due = Math.floor((rate * tick) / 10);
      const messages: { key: string; value: Buffer }[] = [];
      while (published + messages.length < due) for (const e of sampleExecution()) messages.push({ key: e.execution_id, value: codec.encode(e) });
      if (messages.length > 0) await producer.send({ topic: names.raw, acks: -1, compression: CompressionTypes.GZIP, messages });
      published += messages.length;
      publishedUntil = Date.now();
      const wait = t0 + tick * 100 - Date.now();
      if (wait > 0) await sleep(wait);
    }
  })();

  const prober = (async () => {
    // One probe execution a second: publish, then poll the hot store until it is queryable.
    while (running) {
      const events = sampleExecution({ workflowId: 'WF-PROBE' });
      const id = events[0]!.execution_id;
      const sent = Date.now();
      probeSent.set(id, sent);
      await producer.send({ topic: names.raw, acks: -1, messages: [{ key: id, value: codec.encode(events[0]!) }] });
      let queryable = false;
      for (;;) {
        const rs = await clickhouse.query({ query: `SELECT count() AS n FROM ${names.database}.executions WHERE execution_id = {id:String}`, query_params: { id }, format: 'JSONEachRow' });
        const [row] = await rs.json<{ n: number | string }>();
        if ((queryable = Number(row?.n) > 0)) break;
        if (Date.now() - sent > 60_000 || !running) break;
        await sleep(50);
      }
      // A probe given up on is no freshness sample: a timeout counted as 60 s would hide that it never arrived.
      if (queryable && running) freshnessMs.push(Date.now() - sent);
      else if (!queryable && Date.now() - sent > 60_000) probeTimeouts += 1;
      await sleep(Math.max(0, 1_000 - (Date.now() - sent)));
    }
  })();

  const sampler = (async () => {
    while (running) {
      const by = await lagByService();
      lagSamples.push({ t: (Date.now() - t0) / 1_000, y: lagTotal(by), by });
      for (const [name, pid] of pids) {
        const s = pid ? procStats(pid) : undefined;
        if (s) peakRss.set(name, Math.max(peakRss.get(name) ?? 0, s.rssMb));
      }
      await sleep(5_000);
    }
  })();

  await sleep(STEP_S * 1_000);
  running = false;
  await Promise.all([publisher, prober, sampler]);
  await producer.disconnect();
  const seconds = (Date.now() - t0) / 1_000;
  // Flat: judged on the second half of the step (the first absorbs the rate change); the lag may not
  // grow faster than 2 % of the rate, and what remains must be under 10 s of input.
  const tail = lagSamples.filter((s) => s.t >= STEP_S / 2);
  const slopeWindow = tail.length >= 3 ? tail : lagSamples;
  const lagSlope = slope(slopeWindow);
  const lagEnd = lagSamples[lagSamples.length - 1]?.y ?? 0;
  // Per service: the lag at the end and its slope over the same window, to tell which one fell behind.
  const lagByServiceEnd = Object.fromEntries(
    groups.map((g) => [g.service, { end: lagSamples[lagSamples.length - 1]?.by[g.service] ?? 0, slope: round(slope(slopeWindow.map((x) => ({ t: x.t, y: x.by[g.service] ?? 0 }))), 1) }]),
  );
  // The publisher may fall short of the rate (this process and the services share two cores): a step counts only
  // at the rate it published, and one that published less than 98 % of its target is not a flat step at that target.
  const achieved = published / ((publishedUntil - t0) / 1_000);
  // A probe that was not queryable within 60 s says the pipeline did not keep up at this rate.
  const flat = achieved >= rate * 0.98 && lagSlope <= rate * 0.02 && lagEnd <= rate * 10 && probeTimeouts === 0;
  const services: StepResult['services'] = {};
  for (const [name, pid] of pids) {
    const cpu1 = pid ? procStats(pid)?.cpuS : undefined;
    services[name] = { cpu_pct: round(cpu1 === undefined ? Number.NaN : (100 * (cpu1 - (cpu0.get(name) ?? 0))) / seconds, 1), rss_mb: round(peakRss.get(name) ?? Number.NaN, 1) };
  }
  // Give the last probes' alerts a few seconds to arrive.
  await sleep(5_000);
  const alertMs = alertLatencies(t0);
  const probes = [...probeSent.values()].filter((sent) => sent >= t0).length;
  return { rate, achieved, published, flat, lagSlope, lagEnd, lagByService: lagByServiceEnd, freshnessMs, probeTimeouts, services, alertMs, probes };
}

/**
 * A no-op consumer reading the whole raw topic from the start: events/s,
 * over the same window as the other benches' baselines (bench/stats.ts
 * steadyState from the group join to the last record).
 */
async function baseline(): Promise<number> {
  cleanup.add('delete the baseline group', async () => {
    const admin = kafka.admin();
    await admin.connect();
    await admin.deleteGroups([`${names.prefix}-noop`]).finally(() => admin.disconnect());
  });
  return drainRate(kafka, names.raw, `${names.prefix}-noop`);
}

const steps: StepResult[] = [];
let baselineRate = Number.NaN;
try {
  await codec.init();
  supervisor.start();
  try {
    await supervisor.waitReady(120_000);
    say(`pipeline bench: services ${pipeline.services.map((s) => s.name).join(', ')}; steps of ${STEP_S} s from ${START_RATE} events/s`);
    let rate = START_RATE;
    for (let i = 0; i < MAX_STEPS; i++) {
      const step = await runStep(rate);
      steps.push(step);
      say(
        `step ${i + 1}: ${rate} events/s (published ${round(step.achieved, 0)}/s), lag ${step.flat ? 'flat' : 'GROWING'} (slope ${round(step.lagSlope, 1)}/s, end ${step.lagEnd}), freshness p99 ${round(quantile(step.freshnessMs, 0.99), 0)} ms (${step.probeTimeouts} probes timed out), alert p99 ${round(quantile(step.alertMs, 0.99), 0)} ms (${step.alertMs.length}/${step.probes}), ` +
          Object.entries(step.services)
            .map(([n, s]) => `${n} ${s.cpu_pct}% ${s.rss_mb} MB, lag ${step.lagByService[n]?.end ?? '?'} (slope ${step.lagByService[n]?.slope ?? '?'}/s)`)
            .join(', '),
      );
      if (!step.flat) break;
      rate = Math.round(rate * 1.5);
      // Let the lag of the last step drain before the next one.
      for (let t = 0; t < 60 && (await totalLag()) > 0; t++) await sleep(1_000);
    }
  } finally {
    await supervisor.stop();
  }
  baselineRate = await baseline();
  say(`baseline (no-op consumer of the raw topic): ${round(baselineRate, 0)} events/s`);
} finally {
  await cleanup.run();
}

const best = [...steps].reverse().find((s) => s.flat);
const reported = best ?? steps[0]!;
const result = {
  bench: 'pipeline',
  step_s: STEP_S,
  steps: steps.map((s) => ({ rate: s.rate, achieved_events_per_s: round(s.achieved, 0), flat: s.flat, probe_timeouts: s.probeTimeouts, lag_slope_per_s: round(s.lagSlope, 1), lag_end: s.lagEnd, lag_by_service: s.lagByService })),
  // The rate the highest flat step published (not the rate it aimed at); null when no step was flat.
  events_per_s: best ? round(best.achieved, 0) : null,
  baseline_events_per_s: round(baselineRate, 0),
  ratio: best ? round(best.achieved / baselineRate, 3) : null,
  // Without a flat step there is no sustained rate: the figures below are the first step's, and the bench exits 1.
  ...(best ? {} : { failed: `no step was flat (the first, at ${steps[0]?.rate} events/s, was not): no sustained rate` }),
  freshness_p50_ms: round(quantile(reported.freshnessMs, 0.5), 0),
  freshness_p99_ms: round(quantile(reported.freshnessMs, 0.99), 0),
  alert_p50_ms: round(quantile(reported.alertMs, 0.5), 0),
  alert_p99_ms: round(quantile(reported.alertMs, 0.99), 0),
  alerts_received: `${reported.alertMs.length}/${reported.probes}`,
  services: reported.services,
};
console.log(JSON.stringify(result));
if (!best) process.exitCode = 1;
