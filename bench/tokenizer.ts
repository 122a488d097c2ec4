/**
 * `npm run bench -- tokenizer`: the tokenizer service against a decode-only consumer, same topic, same run.
 *
 * EVENTS events of PII-bearing executions (test/helpers/tokenizer-fixtures.ts,
 * e-mail, name, phone and address in inputs, free text in errors and
 * decisions; a third of them failed) are published to a fresh raw topic
 * first. Baseline: a kafkajs consumer (fresh group) that decodes every
 * record through the same registry codec and does nothing else (median of three
 * runs, each in its own group). Service: a
 * TokenizerService (fresh group, default settings) on its real path: decode,
 * scan, subject keys from ClickHouse, HMAC tokens, AES-GCM, encode, and one
 * Kafka transaction per batch with the offsets. Every rate runs from the
 * moment the consumer joined its group to the last event (bench/stats.ts);
 * CPU per event is this process's user+system time in that window; the
 * machine_* figures add the whole machine's busy time in the same window
 * (/proc/stat: the broker, ClickHouse and the registry run on the same
 * cores), and the CPU an event may cost the machine at ratio 0.5.
 *
 * Ceiling: a pass-through on the tokenizer's own Kafka path (the shared batch
 * consumer, one transactional producer per partition, three partitions in
 * flight, the service's output codec, offsets in the transaction) that copies each raw record
 * unchanged, with no decode, scan, seal or encode. No tokenizer built on this
 * path can be faster, so `passthrough_ratio` bounds `ratio` from above.
 *
 * Handler only: the tokenizer's own batch handler (bench/lib/tokenized-events.ts:
 * decode, scan, seal, encode, with keys and subject mappings in memory) on
 * the same events in this process, with no Kafka and no ClickHouse. Its CPU
 * per event is the tokenizing work itself; `handler_only_ratio_ceiling` is
 * the ratio the machine could reach if Kafka cost nothing and every core ran
 * that handler in parallel, so no Kafka client can lift `ratio` above it.
 *
 * Seal: the CPU of one AES-256-GCM seal as the tokenizer makes it
 * (`seal_cpu_us`) and the seals the service made per event
 * (`seals_per_event`), to set against `baseline_cpu_us_per_event`.
 * The bench fails (exit 1) if the service dead-lettered any record: its
 * records counter, which the rate is taken from, counts dead letters too.
 * Last line: one JSON object.
 */
import { Registry } from 'prom-client';
import { BatchConsumer, ConsumerMetrics, DlqPublisher } from '../core/service/index.js';
import { TokenizerMetrics } from '../consumers/tokenizer/metrics.js';
import { PartitionTransactions } from '../consumers/tokenizer/transactions.js';
import { createClickHouse } from '../core/clients/clickhouse.js';
import { createLogger } from '../core/logger.js';
import { loadTokenizerConfig, TokenizerService } from '../consumers/tokenizer/index.js';
import { AuditEventCodec, RegistryClient, type AuditEvent } from '../schemas/index.js';
import { uniqueName } from '../test/helpers/names.js';
import { piiExecution, testKeys } from '../test/helpers/tokenizer-fixtures.js';
import { createTokenizerDatabase, createTokenizerTopics, dropTokenizerTopics, endpoints, kafka, publish } from '../test/helpers/tokenizer-stack.js';
import { availableParallelism } from 'node:os';
import { metricTotal, requireNoDeadLetters, round, rssSampler, steadyState, type MachineCpu } from './stats.js';
import { rawRecords, tokenizeRecords } from './lib/tokenized-events.js';
import { drainRun } from './lib/drain.js';
import { deleteSubjects } from './lib/run.js';
import { createSecretKey, randomUUID } from 'node:crypto';
import { newDataKey, piiAad, sealValues } from '../consumers/tokenizer/crypto.js';

const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 10_000);
const say = (m: string) => process.stderr.write(`${m}\n`);

const client = createClickHouse(endpoints.clickhouse);
const database = await createTokenizerDatabase(client);
const names = await createTokenizerTopics('bench-tokenizer', 3);
const keys = testKeys();
type Run = { items: number; seconds: number; cpuUs: number; machine: MachineCpu | undefined };
/** CPU time of the whole machine (this process, the broker, ClickHouse, everything) per event of a run; undefined off Linux. */
const machineUsPerEvent = (r: Run) => (r.machine ? round(r.machine.busyUs / r.items, 1) : undefined);
/** Share of all cores busy during a run, %. */
const machineBusyPct = (r: Run) => (r.machine ? round((100 * r.machine.busyUs) / r.machine.totalUs, 1) : undefined);
const benchKeys = { AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey };

async function baseline(): Promise<Run> {
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), names.raw);
  // kafkajs' default fetch size and a 200 ms wait: the settings every figure of this baseline was measured with.
  return drainRun(kafka, names.raw, uniqueName('bench-decode-only'), (m) => codec.decode(m.value!), { consumer: { maxWaitTimeInMs: 200 } });
}

async function passthrough(total: number): Promise<Run> {
  const config = loadTokenizerConfig({ ...process.env, AUDITLINE_TOKENIZER_TOPIC: names.raw, AUDITLINE_TOKENIZER_GROUP_ID: `${names.group}-passthrough`, ...benchKeys });
  const { runtime } = config;
  const logger = createLogger('bench-passthrough', 'silent');
  const registry = new Registry();
  const admin = kafka.admin();
  await admin.connect();
  const out = `${names.events}-passthrough`;
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: out, numPartitions: 3, replicationFactor: 1 }] });
  const transactions = new PartitionTransactions({
    kafka,
    admin,
    sourceTopic: runtime.sourceTopic,
    groupId: runtime.groupId,
    transactionalIdPrefix: `${runtime.groupId}-txn`,
    transactionTimeoutMs: config.transactionTimeoutMs,
    compression: config.compression,
    logger,
    metrics: new TokenizerMetrics(registry),
  });
  let copied = 0;
  const consumer = new BatchConsumer({
    kafka,
    settings: runtime,
    handler: async (records) => {
      const partition = records[0]!.partition;
      const messages = records.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp }));
      await transactions.commit(partition, [{ topic: out, messages }], (BigInt(records[records.length - 1]!.offset) + 1n).toString());
      copied += records.length;
      return { deadLetters: [] };
    },
    dlq: new DlqPublisher(kafka, { topic: names.dlq, service: 'passthrough' }),
    metrics: new ConsumerMetrics(registry, 'passthrough'),
    logger,
    commitMode: 'handler',
    partitionsConcurrently: 3,
    sessionTimeoutMs: config.sessionTimeoutMs,
    onAssignment: (assignment) => transactions.assign(assignment[runtime.sourceTopic] ?? []),
  });
  await consumer.start();
  try {
    return await steadyState(async () => copied, total, () => consumer.isJoined);
  } finally {
    await consumer.stop();
    await transactions.close();
    await admin.deleteTopics({ topics: [out] }).catch(() => undefined);
    await admin.deleteGroups([runtime.groupId]).catch(() => undefined);
    await admin.disconnect();
  }
}

/**
 * CPU of one AES-256-GCM seal as the tokenizer makes it (sealValues: JSON of
 * the bundle's values, random IV, Node's createCipheriv) on a bundle of the
 * fixtures' size: e-mail, name, phone and address.
 */
function sealCpuUs(): number {
  const key = createSecretKey(newDataKey());
  const values = ['customer-1@example.com', 'Canaryname 0a1b2c', '+49 30 5550 1234', { street: 'Canarystreet 7', city: 'Berlin' }];
  const aad = piiAad('kAAAAAAAAAAAAAAAA', randomUUID());
  for (let i = 0; i < 5_000; i++) sealValues(key, values, aad);
  const n = 50_000;
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) sealValues(key, values, aad);
  const used = process.cpuUsage(cpu);
  return (used.user + used.system) / n;
}

async function service(total: number): Promise<Run & { rssMb: number; encryptions: number }> {
  const config = loadTokenizerConfig({
    ...process.env,
    AUDITLINE_CLICKHOUSE_DATABASE: database,
    AUDITLINE_TOKENIZER_TOPIC: names.raw,
    AUDITLINE_TOKENIZER_EVENTS_TOPIC: names.events,
    AUDITLINE_TOKENIZER_DLQ_TOPIC: names.dlq,
    AUDITLINE_TOKENIZER_GROUP_ID: names.group,
    ...benchKeys,
  });
  const registry = new Registry();
  const svc = new TokenizerService(config, { logger: createLogger('bench-tokenizer', process.env.BENCH_DEBUG ? 'debug' : 'silent'), registry });
  const rss = rssSampler();
  await svc.start(new AbortController().signal);
  try {
    const run = await steadyState(() => metricTotal(registry, 'auditline_tokenizer_records_total'), total, async () => (await svc.readiness()).ready);
    // records_total counts dead-lettered records too: the rate holds only if every record was tokenized.
    await requireNoDeadLetters(registry, 'auditline_tokenizer_records_total', 'the tokenizer');
    return { ...run, rssMb: rss.stop(), encryptions: await metricTotal(registry, 'auditline_tokenizer_encryptions_total') };
  } finally {
    await svc.stop();
  }
}

/**
 * The tokenizer's batch handler alone, in memory (after a warm-up on a tenth of the events): this process's CPU per
 * event. The raw records are encoded before the clock starts: the service reads them encoded from Kafka.
 */
async function handlerOnly(events: readonly AuditEvent[]): Promise<{ items: number; seconds: number; cpuUs: number }> {
  const records = rawRecords(events);
  await tokenizeRecords(records.slice(0, Math.ceil(records.length / 10)));
  const cpu = process.cpuUsage();
  const started = process.hrtime.bigint();
  await tokenizeRecords(records);
  const used = process.cpuUsage(cpu);
  return { items: records.length, seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuUs: used.user + used.system };
}

let result: Record<string, unknown>;
try {
  const events: AuditEvent[] = [];
  for (let i = 0; i < EXECUTIONS; i++) events.push(...piiExecution({ status: i % 3 === 0 ? 'failed' : 'success', email: `customer-${i % 2_000}@example.com` }));
  say(`tokenizer bench: ${events.length} events of ${EXECUTIONS} executions (2000 customers), topic ${names.raw}`);
  await publish(names.raw, events);
  // The decode-only consumer drains the topic in well under a second, so one run moves with the machine: the median of three.
  const bases = [];
  for (let i = 0; i < 3; i++) bases.push(await baseline());
  const base = bases.sort((a, b) => a.items / a.seconds - b.items / b.seconds)[1]!;
  say(`decode-only consumer (median of ${bases.map((b) => round(b.items / b.seconds, 0)).join(', ')}): ${round(base.items / base.seconds, 0)} events/s, ${round(base.cpuUs / base.items, 1)} µs CPU/event`);
  const pass = await passthrough(events.length);
  say(`pass-through on the tokenizer's Kafka path (ceiling): ${round(pass.items / pass.seconds, 0)} events/s, ${round(pass.cpuUs / pass.items, 1)} µs CPU/event`);
  const tok = await service(events.length);
  say(`tokenizer: ${round(tok.items / tok.seconds, 0)} events/s, ${round(tok.cpuUs / tok.items, 1)} µs CPU/event`);
  const alone = await handlerOnly(events);
  const aloneUs = alone.cpuUs / alone.items;
  const ceiling = (availableParallelism() * 1e6) / aloneUs / (base.items / base.seconds);
  say(`handler only (no Kafka, no ClickHouse): ${round(alone.items / alone.seconds, 0)} events/s on one thread, ${round(aloneUs, 1)} µs CPU/event; with Kafka free and ${availableParallelism()} cores all tokenizing: ratio ${round(ceiling, 3)} at most`);
  const sealUs = sealCpuUs();
  const sealsPerEvent = tok.encryptions / events.length;
  say(`one AES-256-GCM seal (sealValues): ${round(sealUs, 1)} µs CPU; ${round(sealsPerEvent, 2)} per event = ${round(sealUs * sealsPerEvent, 1)} µs/event, against ${round(base.cpuUs / base.items, 1)} µs/event for all the decode-only consumer does`);
  if (tok.machine) say(`machine: ${machineBusyPct(tok)} % of all cores busy in the tokenizer's window, ${machineUsPerEvent(tok)} µs of machine CPU/event (pass-through ${machineBusyPct(pass)} %, ${machineUsPerEvent(pass)} µs; decode-only ${machineUsPerEvent(base)} µs)`);
  result = {
    bench: 'tokenizer',
    events: events.length,
    events_per_s: round(tok.items / tok.seconds, 0),
    baseline_events_per_s: round(base.items / base.seconds, 0),
    ratio: round(tok.items / tok.seconds / (base.items / base.seconds), 3),
    cpu_us_per_event: round(tok.cpuUs / tok.items, 1),
    baseline_cpu_us_per_event: round(base.cpuUs / base.items, 1),
    passthrough_events_per_s: round(pass.items / pass.seconds, 0),
    passthrough_ratio: round(pass.items / pass.seconds / (base.items / base.seconds), 3),
    passthrough_cpu_us_per_event: round(pass.cpuUs / pass.items, 1),
    rss_mb: round(tok.rssMb, 1),
    handler_only_events_per_s: round(alone.items / alone.seconds, 0),
    handler_only_cpu_us_per_event: round(aloneUs, 1),
    handler_only_ratio_ceiling: round(ceiling, 3),
    // The encryption the issue asks for, alone: CPU of one seal, and seals per event in this mix (one per field and subject).
    seal_cpu_us: round(sealUs, 2),
    seals_per_event: round(sealsPerEvent, 3),
    // The machine's side of the figures: its cores were this busy in each window, at this much CPU per event
    // (the process and the broker, ClickHouse and the registry together). At ratio 0.5, with every core busy,
    // an event may cost the machine at most `machine_cpu_budget_us_per_event_at_target`.
    machine_busy_pct: machineBusyPct(tok),
    machine_cpu_us_per_event: machineUsPerEvent(tok),
    baseline_machine_cpu_us_per_event: machineUsPerEvent(base),
    passthrough_machine_busy_pct: machineBusyPct(pass),
    passthrough_machine_cpu_us_per_event: machineUsPerEvent(pass),
    machine_cpu_budget_us_per_event_at_target: tok.machine ? round(tok.machine.totalUs / tok.seconds / (0.5 * (base.items / base.seconds)), 1) : undefined,
  };
} finally {
  await dropTokenizerTopics(names);
  await deleteSubjects(endpoints.registry, [names.raw, names.events]).catch((err: unknown) => say(`deleting the registry subjects failed: ${String(err)}`));
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
  await client.close();
}
console.log(JSON.stringify(result));
