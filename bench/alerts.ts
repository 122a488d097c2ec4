/**
 * `npm run bench -- alerts`: the alerts service with 100 rules loaded.
 *
 * Throughput: EVENTS events (executions of 4 events over 66 workflows that
 * feed threshold and absence state) are published at once; rule
 * evaluations per second = events x rules / time until stage 1 has handled
 * them all (publishing included). Throughput baseline, same run and
 * topic: a decode-only kafkajs consumer of a fresh group draining the
 * events topic from its group join to its last record
 * (`baseline_events_per_s`, `throughput_ratio`). Latency: LATENCY_ALERTS failed executions of WF-LAT, published
 * one at a time, each firing one alert; latency = time the webhook
 * receiver got the alert - Kafka timestamp of the source record. Baseline,
 * same run and topic: a plain kafkajs consumer on the events topic, p99 of
 * receive time - record timestamp of the same records. Last line: JSON
 * (the service's warnings go to stderr).
 *
 * The events subject is registered before the service starts (its start
 * waits until the subject has a version). The start and the baseline
 * consumer's join have a deadline, BENCH_START_TIMEOUT_MS (default 60 000):
 * past it the bench fails with the step it waited for and exits 1. Topics,
 * groups, the database, the registry subject and the scratch folder are
 * removed however it ends.
 * The bench fails (exit 1) when a stage does not handle every event within
 * BENCH_DRAIN_TIMEOUT_MS (default 300 000), dead-letters any, or fewer than
 * BENCH_LATENCY_ALERTS alerts arrive.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { createClickHouse } from '../core/clients/clickhouse.js';
import { createKafka } from '../core/clients/kafka.js';
import { loadEndpoints } from '../core/endpoints.js';
import { AlertsService, loadAlertsConfig } from '../consumers/alerts/index.js';
import { migrate } from '../infra/clickhouse/migrate.js';
import { loadRetention } from '../infra/retention.js';
import { migrationVariables } from '../infra/setup.js';
import { AuditEventCodec, payloadOf, RegistryClient, SCHEMA_VERSION, type AuditEvent, type EventKind, type EventPayloads } from '../schemas/index.js';
import { drainRate } from './lib/drain.js';
import { Cleanup, deleteSubjects, withDeadline } from './lib/run.js';
import { quantile, requireNoDeadLetters, round, rssSampler } from './stats.js';

const EVENTS = Number(process.env.BENCH_EVENTS ?? 20_000);
const LATENCY_ALERTS = Number(process.env.BENCH_LATENCY_ALERTS ?? 200);
const RULES = 100;
/** How long each stage may take to handle the throughput events (ms). */
const DRAIN_TIMEOUT_MS = Number(process.env.BENCH_DRAIN_TIMEOUT_MS ?? 300_000);
/** How long the service's start and the baseline consumer's join may take (ms). */
const START_TIMEOUT_MS = Number(process.env.BENCH_START_TIMEOUT_MS ?? 60_000);
const say = (m: string) => process.stderr.write(`${m}\n`);
const endpoints = loadEndpoints();
const kafka = createKafka(endpoints.kafka);
const base = `bench.alerts.${Date.now().toString(36)}`;
const topics = { events: `${base}.events`, signals: `${base}.signals`, outbox: `${base}.outbox`, dlq: `${base}.dlq` };
const database = `bench_alerts_${Date.now().toString(36)}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rulesYaml(): string {
  const r: string[] = ['rules:', '  - { name: lat, kind: match, severity: high, channels: [bench], where: { event: ExecutionFinished, status: failed, workflow_id: WF-LAT } }'];
  for (let i = 0; r.length - 1 < RULES; i++) {
    const n = r.length - 1;
    if (n <= 33) r.push(`  - { name: thr-${i}, kind: threshold, severity: high, channels: [bench], where: { event: ExecutionFinished, workflow_id: WF-X${i} }, key: workflow_id, count: 100000, window: 10m }`);
    else if (n <= 66) r.push(`  - { name: open-${i}, kind: absence, severity: high, channels: [bench], start: { event: ExecutionStarted, workflow_id: WF-Y${i % 33} }, end: { event: ExecutionFinished }, within: 1h }`);
    else if (n <= 90) r.push(`  - { name: step-${i}, kind: match, severity: info, channels: [bench], where: { event: StepFinished, status: failed, step_name: never-${i} }, touched_pii: true }`);
    else if (n <= 98) r.push(`  - { name: quiet-${i}, kind: absence, severity: high, channels: [bench], key: producer.service, where: { producer.service: p-${i} }, within: 1h }`);
    else r.push('  - { name: gap, kind: gap, severity: high, channels: [bench], where: { workflow_id: WF-GAP }, grace: 1h }');
  }
  return `${r.join('\n')}\n`;
}

function event<K extends EventKind>(kind: K, value: EventPayloads[K], executionId: string, workflowId: string, sequence: number): AuditEvent {
  const now = Date.now();
  return {
    event_id: randomUUID(),
    event_time: now,
    execution_id: executionId,
    workflow_id: workflowId,
    sequence,
    correlation_id: null,
    producer: { service: `p-${91 + (sequence % 8)}`, host: 'bench', client_version: '0.1.0', instance_id: 'bench' },
    schema_version: SCHEMA_VERSION,
    payload: payloadOf(kind, value),
  };
}

function executionEvents(workflowId: string, failed: boolean): AuditEvent[] {
  const id = randomUUID();
  const now = Date.now();
  return [
    event('ExecutionStarted', { workflow_name: 'bench', workflow_version: '1', trigger: 'api', triggered_by: { kind: 'service', id: 'svc' }, start_time: now, input: '{"customer_email":{"$pii":{"v":1,"t":"x","f":"customer_email","k":"k"}}}', input_truncation: null, parent_execution_id: null }, id, workflowId, 1),
    event('StepFinished', { step_id: 1, step_name: 'charge', attempt: 1, start_time: now, end_time: now, duration_ms: 1, status: 'success', input_data: '{}', output_data: '{}', data_truncation: null, error: null }, id, workflowId, 2),
    event('DecisionRecorded', { step_id: 1, branch_condition: 'amount > 1', branch_taken: 'yes', branch_reason: 'r', condition_values: '{}' }, id, workflowId, 3),
    event('ExecutionFinished', { end_time: now, duration_ms: 1, status: failed ? 'failed' : 'success', output: null, error: failed ? { type: 'E', message: 'm' } : null }, id, workflowId, 4),
  ];
}

async function main(): Promise<Record<string, unknown>> {
  const cleanup = new Cleanup();
  try {
    return await measure(cleanup);
  } finally {
    await cleanup.run();
  }
}

async function measure(cleanup: Cleanup): Promise<Record<string, unknown>> {
  const admin = kafka.admin();
  await admin.connect();
  cleanup.add('admin disconnect', () => admin.disconnect());
  cleanup.add('delete topics', () => admin.deleteTopics({ topics: Object.values(topics) }));
  // A group that never formed (the run failed before its join) cannot be deleted: nothing is left behind then.
  cleanup.add('delete groups', () => admin.deleteGroups([`${base}-alerts`, `${base}-alerts.rules`, `${base}-alerts.delivery`, `${base}-baseline`, `${base}-drain`]).catch(() => undefined));
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: topics.events, numPartitions: 3, replicationFactor: 1 },
      { topic: topics.signals, numPartitions: 3, replicationFactor: 1 },
      { topic: topics.outbox, numPartitions: 3, replicationFactor: 1 },
      { topic: topics.dlq, numPartitions: 1, replicationFactor: 1 },
    ],
  });
  const ch = createClickHouse(endpoints.clickhouse);
  cleanup.add('ClickHouse close', () => ch.close());
  cleanup.add(`drop database ${database}`, () => ch.command({ query: `DROP DATABASE IF EXISTS ${database}` }));
  await migrate(ch, { database, variables: migrationVariables(loadRetention()) });
  const received = new Map<string, number>();
  const latencies: number[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const at = Date.now();
      const a = JSON.parse(body) as { alert_id: string; rule: string; evidence: { published_ms?: number } };
      if (!received.has(a.alert_id) && a.rule === 'lat' && a.evidence.published_ms) latencies.push(at - a.evidence.published_ms);
      received.set(a.alert_id, at);
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanup.add('webhook receiver close', () => new Promise((r) => server.close(r)));
  const port = (server.address() as AddressInfo).port;

  const dir = mkdtempSync(path.join(os.tmpdir(), 'auditline-bench-alerts-'));
  cleanup.add(`remove ${dir}`, () => rm(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'rules.yaml'), rulesYaml());
  writeFileSync(path.join(dir, 'channels.yaml'), `channels:\n  bench:\n    url: http://127.0.0.1:${port}/hook\n    format: json\n    secret_env: BENCH_ALERTS_SECRET\n    rate_per_minute: 60000\n`);
  const config = loadAlertsConfig({
    ...process.env,
    BENCH_ALERTS_SECRET: 'bench-secret-0123456789',
    AUDITLINE_CLICKHOUSE_DATABASE: database,
    AUDITLINE_ALERTS_TOPIC: topics.events,
    AUDITLINE_ALERTS_SIGNALS_TOPIC: topics.signals,
    AUDITLINE_ALERTS_OUTBOX_TOPIC: topics.outbox,
    AUDITLINE_ALERTS_DLQ_TOPIC: topics.dlq,
    AUDITLINE_ALERTS_GROUP_ID: `${base}-alerts`,
    AUDITLINE_ALERTS_FROM_BEGINNING: 'true',
    AUDITLINE_ALERTS_RULES_FILE: path.join(dir, 'rules.yaml'),
    AUDITLINE_ALERTS_CHANNELS_FILE: path.join(dir, 'channels.yaml'),
    AUDITLINE_ALERTS_ALLOWED_TARGETS: '127.0.0.1/32',
    AUDITLINE_ALERTS_METRICS_PORT: '0',
  });
  if (config.rules.length !== RULES) throw new Error(`expected ${RULES} rules, got ${config.rules.length}`);
  // The service reads the events subject at start (it waits until the subject has a version): register it first.
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), topics.events);
  cleanup.add('delete registry subject', () => deleteSubjects(endpoints.registry, [topics.events]));
  await codec.init();
  const registry = new Registry();
  // Warnings on stderr: stdout carries the result line only.
  const logger = pino({ name: 'bench-alerts', level: 'warn' }, pino.destination({ fd: 2, sync: true }));
  const service = new AlertsService(config, { logger, registry });
  const stop = new AbortController();
  cleanup.add('service stop', () => service.stop());
  cleanup.add('service abort', () => stop.abort());
  // The start waits for ClickHouse, Kafka and the registry subject with backoff and no end of its own.
  await withDeadline('the alerts service start (ClickHouse, Kafka topics, registry subject)', START_TIMEOUT_MS, service.start(stop.signal), () => stop.abort());

  // Baseline consumer on the same topic: receive time - record timestamp.
  const baseline: number[] = [];
  let measureBaseline = false;
  const consumer = kafka.consumer({ groupId: `${base}-baseline`, maxWaitTimeInMs: 50 });
  await consumer.connect();
  cleanup.add('baseline consumer disconnect', () => consumer.disconnect());
  await consumer.subscribe({ topics: [topics.events], fromBeginning: false });
  let baselineJoined = false;
  consumer.on(consumer.events.GROUP_JOIN, () => (baselineJoined = true));
  await consumer.run({ eachMessage: async ({ message }) => void (measureBaseline && baseline.push(Date.now() - Number(message.timestamp))) });
  await withDeadline('the baseline consumer group join', START_TIMEOUT_MS, (async () => {
    while (!baselineJoined) await sleep(100);
  })());

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanup.add('producer disconnect', () => producer.disconnect());
  const send = (events: AuditEvent[]) => producer.send({ topic: topics.events, acks: -1, messages: events.map((e) => ({ key: e.execution_id, value: codec.encode(e) })) });
  const processed = async () => {
    const m = await registry.getSingleMetric('auditline_alerts_records_total')!.get();
    return m.values.reduce((s, v) => s + v.value, 0);
  };
  const rss = rssSampler();

  say(`throughput: ${EVENTS} events, ${RULES} rules`);
  const executions: AuditEvent[] = [];
  for (let i = 0; executions.length < EVENTS; i++) executions.push(...executionEvents(i % 2 === 0 ? `WF-X${i % 33}` : `WF-Y${i % 33}`, i % 7 === 0));
  const before = await processed();
  const t0 = performance.now();
  for (let i = 0; i < executions.length; i += 2_000) await send(executions.slice(i, i + 2_000));
  const stage1Deadline = Date.now() + DRAIN_TIMEOUT_MS;
  while ((await processed()) - before < executions.length) {
    if (Date.now() > stage1Deadline) throw new Error(`stage 1 handled ${(await processed()) - before} of ${executions.length} events within ${DRAIN_TIMEOUT_MS} ms`);
    await sleep(20);
  }
  // auditline_alerts_records_total counts dead-lettered records too: the rate holds only if none was.
  await requireNoDeadLetters(registry, 'auditline_alerts_records_total', 'stage 1 (events)');
  const seconds = (performance.now() - t0) / 1000;
  const evalsPerS = (executions.length * RULES) / seconds;
  say(`  ${round(seconds, 2)} s, ${Math.round(evalsPerS)} evaluations/s`);
  // Latency is measured on a drained pipeline: wait until stage 2 has handled every signal stage 1 wrote.
  const counter = async (name: string) => ((await registry.getSingleMetric(name)!.get()).values.reduce((s, v) => s + (v.labels.outcome === 'dead_lettered' ? 0 : v.value), 0));
  const drained = Date.now() + DRAIN_TIMEOUT_MS;
  for (;;) {
    const [handled, signals] = [await counter('auditline_alerts_rules_records_total'), await counter('auditline_alerts_signals_total')];
    if (handled >= signals) break;
    if (Date.now() > drained) throw new Error(`stage 2 handled ${handled} of ${signals} signals within ${DRAIN_TIMEOUT_MS} ms`);
    await sleep(200);
  }
  await requireNoDeadLetters(registry, 'auditline_alerts_rules_records_total', 'stage 2 (signals)');
  say(`  stage 2 drained after ${round((performance.now() - t0) / 1000, 2)} s`);
  await sleep(1_000);

  say(`latency: ${LATENCY_ALERTS} alerts, one at a time`);
  measureBaseline = true;
  for (let i = 0; i < LATENCY_ALERTS; i++) {
    await send(executionEvents('WF-LAT', true));
    await sleep(50);
  }
  const until = Date.now() + 60_000;
  while (latencies.length < LATENCY_ALERTS && Date.now() < until) await sleep(100);
  measureBaseline = false;
  // Every failed WF-LAT execution fires one alert: fewer (or none, which would leave the quantiles empty) is a failure.
  if (latencies.length < LATENCY_ALERTS) throw new Error(`the receiver got ${latencies.length} of ${LATENCY_ALERTS} latency alerts within 60 s of the last publish`);
  if (baseline.length === 0) throw new Error('the baseline consumer received none of the latency events');
  const rssMb = rss.stop();

  // Throughput baseline, same run and topic: a fresh consumer decodes every record of the events topic (the
  // throughput and latency events, already there) and does nothing else, from its group join to the last record.
  say('throughput baseline: a decode-only consumer drains the events topic');
  const drainEventsPerS = await drainRate(kafka, topics.events, `${base}-drain`, (m) => codec.decode(m.value!), DRAIN_TIMEOUT_MS);
  say(`  ${Math.round(drainEventsPerS)} events/s`);
  if (process.env.BENCH_DUMP_METRICS) say((await registry.metrics()).split('\n').filter((l) => /batch_duration_seconds_(sum|count)|records_total/.test(l)).join('\n'));

  const result = {
    bench: 'alerts',
    rules: RULES,
    events: executions.length,
    evals_per_s: Math.round(evalsPerS),
    // The service's window runs from the first publish to stage 1's last record (publishing included); the
    // baseline's from its group join to the last record of a topic already written.
    events_per_s: Math.round(executions.length / seconds),
    baseline_events_per_s: Math.round(drainEventsPerS),
    throughput_ratio: round(executions.length / seconds / drainEventsPerS, 3),
    alerts: latencies.length,
    alerts_expected: LATENCY_ALERTS,
    p50_ms: round(quantile(latencies, 0.5), 1),
    p99_ms: round(quantile(latencies, 0.99), 1),
    max_ms: round(Math.max(...latencies), 1),
    baseline_p50_ms: round(quantile(baseline, 0.5), 1),
    baseline_p99_ms: round(quantile(baseline, 0.99), 1),
    target_p99_ms: 1000,
    peak_rss_mb: round(rssMb, 1),
    note: 'shared 2-CPU machine; service, producer, baseline consumer and receiver in one process',
  };
  return result;
}

main().then(
  (result) => {
    console.log(JSON.stringify(result));
    process.exit(0);
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
