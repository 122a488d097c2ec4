/**
 * `npm run bench -- tokenizer`: the tokenizer service against a decode-only consumer, same topic, same run.
 *
 * EVENTS events of PII-bearing executions (test/helpers/tokenizer-fixtures.ts,
 * e-mail, name, phone and address in inputs, free text in errors and
 * decisions; a third of them failed) are published to a fresh raw topic
 * first. Baseline: a kafkajs consumer (fresh group) that decodes every
 * record through the same registry codec and does nothing else. Service: a
 * TokenizerService (fresh group, default settings) on its real path: decode,
 * scan, subject keys from ClickHouse, HMAC tokens, AES-GCM, encode, and one
 * Kafka transaction per batch with the offsets. Both rates are steady state
 * (from the first finished batch to the last, bench/stats.ts); CPU per
 * event is this process's user+system time in that window. Last line: one JSON object.
 */
import { Registry } from 'prom-client';
import { createClickHouse } from '../core/clients/clickhouse.js';
import { createLogger } from '../core/logger.js';
import { loadTokenizerConfig, TokenizerService } from '../consumers/tokenizer/index.js';
import { AuditEventCodec, RegistryClient, type AuditEvent } from '../schemas/index.js';
import { uniqueName } from '../test/helpers/names.js';
import { piiExecution, testKeys } from '../test/helpers/tokenizer-fixtures.js';
import { createTokenizerDatabase, createTokenizerTopics, dropTokenizerTopics, endpoints, kafka, publish } from '../test/helpers/tokenizer-stack.js';
import { metricTotal, round, rssSampler, steadyState } from './stats.js';

const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 10_000);
const say = (m: string) => process.stderr.write(`${m}\n`);

const client = createClickHouse(endpoints.clickhouse);
const database = await createTokenizerDatabase(client);
const names = await createTokenizerTopics('bench-tokenizer', 3);
const keys = testKeys();

async function baseline(total: number): Promise<{ items: number; seconds: number; cpuUs: number }> {
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), names.raw);
  const consumer = kafka.consumer({ groupId: uniqueName('bench-decode-only'), maxWaitTimeInMs: 200 });
  let decoded = 0;
  await consumer.connect();
  await consumer.subscribe({ topics: [names.raw], fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        await codec.decode(m.value!);
        decoded += 1;
      }
    },
  });
  try {
    return await steadyState(async () => decoded, total);
  } finally {
    await consumer.disconnect();
  }
}

async function service(total: number): Promise<{ items: number; seconds: number; cpuUs: number; rssMb: number }> {
  const config = loadTokenizerConfig({
    ...process.env,
    AUDITLINE_CLICKHOUSE_DATABASE: database,
    AUDITLINE_TOKENIZER_TOPIC: names.raw,
    AUDITLINE_TOKENIZER_EVENTS_TOPIC: names.events,
    AUDITLINE_TOKENIZER_DLQ_TOPIC: names.dlq,
    AUDITLINE_TOKENIZER_GROUP_ID: names.group,
    AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey,
    AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey,
  });
  const registry = new Registry();
  const svc = new TokenizerService(config, { logger: createLogger('bench-tokenizer', process.env.BENCH_DEBUG ? 'debug' : 'silent'), registry });
  const rss = rssSampler();
  await svc.start(new AbortController().signal);
  try {
    const run = await steadyState(() => metricTotal(registry, 'auditline_tokenizer_records_total'), total);
    return { ...run, rssMb: rss.stop() };
  } finally {
    await svc.stop();
  }
}

let result: Record<string, unknown>;
try {
  const events: AuditEvent[] = [];
  for (let i = 0; i < EXECUTIONS; i++) events.push(...piiExecution({ status: i % 3 === 0 ? 'failed' : 'success', email: `customer-${i % 2_000}@example.com` }));
  say(`tokenizer bench: ${events.length} events of ${EXECUTIONS} executions (2000 customers), topic ${names.raw}`);
  await publish(names.raw, events);
  const base = await baseline(events.length);
  say(`decode-only consumer: ${round(base.items / base.seconds, 0)} events/s, ${round(base.cpuUs / base.items, 1)} µs CPU/event`);
  const tok = await service(events.length);
  say(`tokenizer: ${round(tok.items / tok.seconds, 0)} events/s, ${round(tok.cpuUs / tok.items, 1)} µs CPU/event`);
  result = {
    bench: 'tokenizer',
    events: events.length,
    events_per_s: round(tok.items / tok.seconds, 0),
    baseline_events_per_s: round(base.items / base.seconds, 0),
    ratio: round(tok.items / tok.seconds / (base.items / base.seconds), 3),
    cpu_us_per_event: round(tok.cpuUs / tok.items, 1),
    baseline_cpu_us_per_event: round(base.cpuUs / base.items, 1),
    rss_mb: round(tok.rssMb, 1),
  };
} finally {
  await dropTokenizerTopics(names);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
  await client.close();
}
console.log(JSON.stringify(result));
