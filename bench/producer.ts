/**
 * `npm run bench -- producer`: the producer client against raw kafkajs.
 *
 * Client: C concurrent workflows (default: one batch worth), each recording an execution through the
 * client (startExecution, step, decision, finish; ack = broker), latency
 * taken per recording call. Baseline, same run and topic layout: the same
 * number of events, pre-encoded by the same codec, sent by a raw kafkajs
 * idempotent producer with the same acks (-1), compression (GZIP) and batch
 * size as the client, one batch in flight (what an idempotent producer with
 * ordering allows). Both sides are set up and warmed once, then measured in
 * BENCH_ROUNDS interleaved rounds (default 5); figures are per-side medians.
 * With ack 'broker' a send Kafka refuses is spooled and the call still
 * resolves, so after each round the bench checks the client's metrics and
 * fails (exit 1) unless every event was acknowledged directly by Kafka.
 * Last line: one JSON object.
 */
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { Registry } from 'prom-client';
import { createKafka } from '../core/clients/kafka.js';
import { loadEndpoints } from '../core/endpoints.js';
import { createAuditProducer } from '../producers/index.js';
import { AuditEventCodec, RegistryClient, sampleExecution } from '../schemas/index.js';
import { Cleanup, deleteSubjects } from './lib/run.js';
import { metricTotal, metricWhere, quantile, round, rssSampler } from './stats.js';

const { CompressionTypes } = kafkajs;
const BATCH = 500;
const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 4000);
// As many workflows in flight as a batch holds, so that the client can fill
// batches of the size the baseline sends (a closed loop with fewer workflows
// measures concurrency, not the client).
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? BATCH);
const EVENTS_PER_EXECUTION = 4;
/** Executions run before measuring, on both sides (connections, schema registration, JIT). */
const WARMUP_EXECUTIONS = Number(process.env.BENCH_WARMUP_EXECUTIONS ?? BATCH);
/** Measured rounds per side, interleaved (odd count: the median is one round's figure). */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const endpoints = loadEndpoints();
const kafka = createKafka(endpoints.kafka);
const topic = `bench.producer.${Date.now().toString(36)}`;
const say = (m: string) => process.stderr.write(`${m}\n`);

/** A side of the comparison, set up and warmed once; `measure` times one round of EXECUTIONS executions' events. */
interface Side {
  measure(round: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * With ack 'broker' a batch Kafka refused is spooled and its calls still
 * resolve: a round could time the spool, not Kafka. Fails unless every
 * event recorded so far was acknowledged by Kafka directly, none failed a
 * send, none was lost and none is spooled.
 */
async function requireAllDelivered(metrics: Registry, recorded: number): Promise<void> {
  const direct = await metricWhere(metrics, 'auditline_producer_delivered_events_total', { path: 'direct' });
  const replayed = await metricWhere(metrics, 'auditline_producer_delivered_events_total', { path: 'replay' });
  const sendErrors = await metricTotal(metrics, 'auditline_producer_send_errors_total');
  const lost = await metricTotal(metrics, 'auditline_producer_lost_events_total');
  const spooled = await metricTotal(metrics, 'auditline_producer_spooled_events');
  if (direct !== recorded || replayed > 0 || sendErrors > 0 || lost > 0 || spooled > 0) {
    throw new Error(`the client did not send every event directly: ${direct} of ${recorded} acknowledged directly, ${replayed} replayed from the spool, ${spooled} still spooled, ${lost} lost, ${sendErrors} failed sends`);
  }
}

async function clientSide(latenciesMs: number[]): Promise<Side> {
  const spoolDir = path.join(os.tmpdir(), `auditline-bench-spool-${randomUUID()}`);
  const metrics = new Registry();
  const audit = createAuditProducer({
    metrics,
    brokers: endpoints.kafka.brokers,
    schemaRegistryUrl: endpoints.registry.url,
    service: 'bench-producer',
    topic,
    maxBatchEvents: BATCH,
    spoolDir,
  });
  const timed = async <T>(fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const r = await fn();
    latenciesMs.push(performance.now() - t0);
    return r;
  };
  /** Runs executions [from, to) across CONCURRENCY workflows; `measure` records call latencies. */
  const runExecutions = async (from: number, to: number, measure: boolean) => {
    const call = measure ? timed : <T>(fn: () => Promise<T>) => fn();
    let next = from;
    const worker = async () => {
      while (next < to) {
        const n = next++;
        const run = await call(() =>
          audit.startExecution({
            workflowId: `WF-${n % 10}`,
            workflowName: 'Invoice sync',
            trigger: 'webhook',
            triggeredBy: { kind: 'user', id: 'u-42' },
            input: { customer_email: 'ann@example.com', amount: 12000 + n },
          }),
        );
        await call(() => run.step('fetch-invoice', () => ({ invoice: n, amount: 12000 + n }), { input: { id: n } }));
        await call(() => run.decision({ condition: 'amount > 10000', taken: 'manual-approval', reason: 'amount exceeds 10000', values: { amount: 12000 + n } }));
        await call(() => run.finish('success', { output: { approved: false } }));
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  };
  // Warm-up (schema registration, connections, JIT), not part of the figures.
  await runExecutions(0, WARMUP_EXECUTIONS, false);
  return {
    async measure(round) {
      const from = WARMUP_EXECUTIONS + round * EXECUTIONS;
      const t0 = performance.now();
      await runExecutions(from, from + EXECUTIONS, true);
      const seconds = (performance.now() - t0) / 1000;
      await requireAllDelivered(metrics, (from + EXECUTIONS) * EVENTS_PER_EXECUTION);
      return seconds;
    },
    async close() {
      await audit.close();
      // Scratch spool of this run only; every run makes a new one.
      await rm(spoolDir, { recursive: true, force: true });
    },
  };
}

async function baselineSide(batchMs: number[]): Promise<Side & { avgBytes: number }> {
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), topic);
  await codec.init();
  const messages: { key: string; value: Buffer }[] = [];
  while (messages.length < EXECUTIONS * EVENTS_PER_EXECUTION) {
    for (const e of sampleExecution()) messages.push({ key: e.execution_id, value: codec.encode(e) });
  }
  const avgBytes = messages.reduce((s, m) => s + m.value.length, 0) / messages.length;
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  // Warm-up with as many events as the client's warm-up, not part of the figures.
  for (let i = 0; i < WARMUP_EXECUTIONS * EVENTS_PER_EXECUTION; i += BATCH) {
    await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: messages.slice(i % messages.length, (i % messages.length) + BATCH) });
  }
  return {
    avgBytes,
    async measure() {
      const t0 = performance.now();
      for (let i = 0; i < messages.length; i += BATCH) {
        const b0 = performance.now();
        await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: messages.slice(i, i + BATCH) });
        batchMs.push(performance.now() - b0);
      }
      return (performance.now() - t0) / 1000;
    },
    close: () => producer.disconnect(),
  };
}

const events = EXECUTIONS * EVENTS_PER_EXECUTION;
const latenciesMs: number[] = [];
const batchMs: number[] = [];
const baselineSeconds: number[] = [];
const clientSeconds: number[] = [];
let rssMb = 0;
let avgBytes = 0;
const cleanup = new Cleanup();
try {
  const admin = kafka.admin();
  await admin.connect();
  cleanup.add('admin disconnect', () => admin.disconnect());
  cleanup.add(`delete topic ${topic}`, () => admin.deleteTopics({ topics: [topic] }));
  cleanup.add('delete registry subject', () => deleteSubjects(endpoints.registry, [topic]));
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 6, replicationFactor: 1 }] });
  say(`producer bench: ${EXECUTIONS} executions (${events} events), ${CONCURRENCY} concurrent workflows, topic ${topic}`);
  const rss = rssSampler();
  const baseline = await baselineSide(batchMs);
  cleanup.add('baseline producer disconnect', () => baseline.close());
  avgBytes = baseline.avgBytes;
  const client = await clientSide(latenciesMs);
  cleanup.add('client close', () => client.close());
  // Interleaved rounds, alternating which side goes first, so that a change in
  // the machine's load (it is shared) hits both sides alike; figures are medians.
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? (['baseline', 'client'] as const) : (['client', 'baseline'] as const);
    for (const side of order) {
      const seconds = side === 'baseline' ? await baseline.measure(r) : await client.measure(r);
      (side === 'baseline' ? baselineSeconds : clientSeconds).push(seconds);
      say(`round ${r + 1}/${ROUNDS} ${side}: ${round(events / seconds, 0)} events/s`);
    }
  }
  rssMb = rss.stop();
} finally {
  await cleanup.run();
}

const baselineMedian = quantile(baselineSeconds, 0.5);
const clientMedian = quantile(clientSeconds, 0.5);
const result = {
  bench: 'producer',
  executions: EXECUTIONS,
  events,
  rounds: ROUNDS,
  concurrency: CONCURRENCY,
  events_per_s: round(events / clientMedian, 0),
  baseline_events_per_s: round(events / baselineMedian, 0),
  ratio: round(baselineMedian / clientMedian, 3),
  round_ratios: baselineSeconds.map((b, i) => round(b / clientSeconds[i]!, 3)),
  p50_ms: round(quantile(latenciesMs, 0.5)),
  p99_ms: round(quantile(latenciesMs, 0.99)),
  baseline_batch_p50_ms: round(quantile(batchMs, 0.5)),
  baseline_batch_p99_ms: round(quantile(batchMs, 0.99)),
  avg_event_bytes: round(avgBytes, 0),
  rss_mb: round(rssMb, 1),
};
console.log(JSON.stringify(result));
