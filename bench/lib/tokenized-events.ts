/**
 * Tokenized audit events as `audit.events` holds them, for the archiver
 * bench: raw executions in the shape of the tokenizer's test fixtures
 * (test/helpers/tokenizer-fixtures.ts: e-mail, name, phone and address in
 * the input, the e-mail again in a step input, free-text PII in errors and
 * decision reasons, one in seven failed) are run through the tokenizer's
 * own batch handler with its default policy, keys and subject resolution
 * in memory instead of ClickHouse. So tokens are the real HMAC tokens
 * (deterministic: a returning customer's token repeats), key ids are per
 * data subject, and each PII field is one AES-GCM bundle with a random IV.
 * Customers come from a fixed pool picked with a seeded random source, as
 * in demo/workflows.ts, so customers return across executions.
 */
import type { Message } from 'kafkajs';
import { deadLetterMessage, type SourceRecord } from '../../core/service/index.js';
import { createTokenizerHandler, TOKENIZED_HEADER } from '../../consumers/tokenizer/handler.js';
import { tokenizePolicy } from '../../consumers/tokenizer/tokenize-event.js';
import { scannedFieldPaths } from '../../core/pii/scanned-fields.js';
import { loadTokenizerConfig, TokenKey } from '../../consumers/tokenizer/index.js';
import { seededRandom } from '../../demo/workflows.js';
import { auditEventSchema, frame, unframe, type AuditEvent } from '../../schemas/index.js';
import { MemoryKeys, piiExecution, testKeys } from '../../test/helpers/tokenizer-fixtures.js';

export interface TokenizedShape {
  executions: number;
  /** Distinct customers the executions are drawn from. */
  customers: number;
  seed: number;
}

const FIRST = ['Ann', 'Bob', 'Chloe', 'Dev', 'Elif', 'Femi', 'Grace', 'Hiro', 'Ines', 'Jonas'];
const LAST = ['Archer', 'Byrne', 'Chen', 'Dubois', 'Eze', 'Fischer', 'Garcia', 'Haddad', 'Ivanova', 'Jensen'];
const WORKFLOWS = ['WF-001', 'WF-002', 'WF-003'];

/** The raw (untokenized) events, in execution order, each execution's events together. */
export function rawExecutions(shape: TokenizedShape): AuditEvent[] {
  const random = seededRandom(shape.seed);
  const events: AuditEvent[] = [];
  // The fixture gives each execution its own producer instance; a real fleet is a few long-lived workers.
  const producers = Array.from({ length: 8 }, (_, w) => ({ service: 'billing-worker', host: `worker-${w}`, client_version: '0.1.0', instance_id: `inst-${w}` }));
  for (let n = 0; n < shape.executions; n++) {
    const i = Math.floor(random() * shape.customers);
    const first = FIRST[i % FIRST.length]!;
    const last = LAST[Math.floor(i / 10) % LAST.length]!;
    const execution = piiExecution({
        email: `${first}.${last}${i}@example.com`.toLowerCase(),
        name: `${first} ${last}`,
        phone: `+44 20 7946 ${String(i % 10_000).padStart(4, '0')}`,
        status: random() < 1 / 7 ? 'failed' : 'success',
      workflowId: WORKFLOWS[n % WORKFLOWS.length]!,
    });
    for (const e of execution) events.push({ ...e, producer: producers[n % producers.length]! });
  }
  return events;
}

/** Runs events through the tokenizer's batch handler; returns the records it would write to `audit.events` (schema id 1). */
export async function tokenize(events: readonly AuditEvent[], topic = 'audit.events'): Promise<SourceRecord[]> {
  return tokenizeRecords(rawRecords(events), topic);
}

/** Events as the tokenizer reads them from `audit.raw` (schema id 1, partition 0, offsets from 0). */
export function rawRecords(events: readonly AuditEvent[]): SourceRecord[] {
  const { type } = auditEventSchema();
  return events.map((e, j): SourceRecord => ({ topic: 'audit.raw', partition: 0, offset: String(j), key: Buffer.from(e.execution_id), value: frame(1, type.toBuffer(e)), headers: {}, timestamp: String(e.event_time) }));
}

/** Runs raw records (see {@link rawRecords}) through a fresh tokenizer batch handler, in batches of 2 000. */
export async function tokenizeRecords(records: readonly SourceRecord[], topic = 'audit.events'): Promise<SourceRecord[]> {
  const { type } = auditEventSchema();
  const keys = testKeys();
  const config = loadTokenizerConfig({ AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey });
  const subjects = new Map<string, string>();
  const written: Message[] = [];
  const handler = createTokenizerHandler({
    codec: { decode: async (b) => type.fromBuffer(unframe(b).body) as AuditEvent },
    encoder: { encode: (e) => frame(1, type.toBuffer(e)) },
    keys: new MemoryKeys(),
    executions: {
      get: (id) => subjects.get(id),
      remember: (id, s) => void subjects.set(id, s),
      load: async () => 0,
      save: async () => undefined,
    },
    tokenKey: new TokenKey(Buffer.from(keys.tokenKey, 'base64')),
    policy: tokenizePolicy(config),
    paths: scannedFieldPaths(),
    transactions: {
      ready: async () => 0n,
      commit: async (_partition, outputs) => void written.push(...outputs[0]!.messages),
    },
    dlq: { topic: 'dlq', messages: (letters) => letters.map((l) => deadLetterMessage(l, 'tokenizer')) },
    eventsTopic: topic,
  });
  const signal = new AbortController().signal;
  const BATCH = 2_000;
  for (let at = 0; at < records.length; at += BATCH) {
    const { deadLetters } = await handler(records.slice(at, at + BATCH), { signal });
    if (deadLetters.length > 0) throw new Error(`the tokenizer refused ${deadLetters.length} bench events (${deadLetters[0]!.code})`);
  }
  return written.map((m, offset) => ({
    topic,
    partition: 0,
    offset: String(offset),
    key: m.key as Buffer,
    value: m.value as Buffer,
    headers: { [TOKENIZED_HEADER]: Buffer.from('v1') },
    timestamp: String(m.timestamp),
  }));
}
