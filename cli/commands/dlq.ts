import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import type { Message, Producer } from 'kafkajs';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka, isFencedError } from '../../core/clients/kafka.js';
import { Murmur2Partitioner } from '../../core/clients/partitioner.js';
import { chunkBySize } from '../../core/clients/record-size.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { AuditlineError, errorMessage, isAuditlineError } from '../../core/errors.js';
import { DLQ_REDRIVE_TRANSACTIONAL_ID_PREFIX } from '../../infra/kafka/acls.js';
import { REDRIVE_HEADERS, redriveMessage, type StoredDeadLetter } from '../../core/service/index.js';
import { headerText } from '../../core/clients/kafka.js';
import { callerRefusal, maskPiiInText, MIN_REASON_LENGTH } from '../../consumers/tokenizer/index.js';
import { TOPICS } from '../../infra/kafka/topics.js';
import { unframe } from '../../schemas/index.js';
import { parseIsoInstant } from '../../core/iso-time.js';
import { EXIT, UsageError } from '../exit.js';
import { intOption } from '../options.js';
import { matchesFilter, readDeadLetterAt, readDeadLetters, requireTopics, type DlqFilter, type DlqPosition, type ReadOutcome } from '../dlq/read.js';
import { dlqPositionText, planRedrive, REDRIVE_SERVICES, RedriveLog, serviceInputs, sourcePositionText, valueSha256, type RedriveActor } from '../dlq/redrive.js';
import { parseSince, renderRows } from './query.js';
import { identifyNamedCaller } from './reveal-access.js';
import { TOPIC_NAME } from '../../core/kafka-names.js';

/** Exit codes of `auditline dlq` beyond the common ones (docs/cli.md). */
export const DLQ_EXIT = { noMatch: 4, refused: 6 } as const;

const say = (message: string) => process.stderr.write(`${message}\n`);

/** `<partition>:<offset>` on the DLQ topic; UsageError naming the option otherwise. */
export function parseDlqPosition(text: string, what: string): DlqPosition {
  const m = /^(\d{1,9}):(\d{1,19})$/.exec(text.trim());
  if (!m) throw new UsageError(`${what} ${JSON.stringify(text)}: expected <partition>:<offset>, e.g. 0:1234`);
  const offset = BigInt(m[2]!);
  if (offset > 2n ** 63n - 1n) throw new UsageError(`${what} ${text}: the offset is beyond what Kafka holds`);
  return { partition: Number(m[1]), offset };
}

/** `--since`: a duration back from now (30s, 15m, 1h, 7d), an ISO date (midnight UTC) or date-time with zone; epoch ms. */
export function parseSinceTime(text: string, now = Date.now()): number {
  if (/^\s*\d+\s*[smhd]\s*$/.test(text)) return now - parseSince(text) * 1000;
  const at = parseIsoInstant(text)?.ms;
  if (at === undefined) throw new UsageError(`--since ${JSON.stringify(text)}: expected a duration like 15m, 1h, 7d, an ISO date (midnight UTC) or an ISO 8601 time with zone like 2026-03-01T08:00:00Z`);
  return at;
}

function optionalText(value: string | undefined, option: string): string | undefined {
  if (value === undefined) return undefined;
  if (value.trim() === '') throw new UsageError(`${option}: expected a non-empty value`);
  return value.trim();
}

function topicName(value: string): string {
  const topic = value.trim();
  if (!TOPIC_NAME.test(topic)) throw new UsageError(`--topic ${JSON.stringify(value)}: expected a Kafka topic name`);
  return topic;
}

export interface ListOptions {
  topic: string;
  filter: DlqFilter;
  limit: number;
  json: boolean;
}

export function parseListOptions(opts: { topic: string; service?: string; code?: string; sourceTopic?: string; since?: string; limit: string; json?: boolean }, now = Date.now()): ListOptions {
  const service = optionalText(opts.service, '--service');
  const code = optionalText(opts.code, '--code');
  const sourceTopic = optionalText(opts.sourceTopic, '--source-topic');
  return {
    topic: topicName(opts.topic),
    filter: { ...(service ? { service } : {}), ...(code ? { code } : {}), ...(sourceTopic ? { sourceTopic } : {}), ...(opts.since !== undefined ? { sinceMs: parseSinceTime(opts.since, now) } : {}) },
    limit: intOption('--limit', 1, 1_000_000)(opts.limit),
    json: opts.json === true,
  };
}

export interface RedriveOptions {
  topic: string;
  filter: DlqFilter;
  partition?: number;
  from?: bigint;
  to?: bigint;
  dryRun: boolean;
  force: boolean;
  as?: string;
  reason?: string;
  json: boolean;
}

export function parseRedriveOptions(opts: { topic: string; service?: string; code?: string; from?: string; to?: string; dryRun?: boolean; force?: boolean; as?: string; reason?: string; json?: boolean }): RedriveOptions {
  const service = optionalText(opts.service, '--service');
  if (service === undefined) throw new UsageError('--service is required: a redrive sends the dead letters of one service at a time');
  if (!(REDRIVE_SERVICES as readonly string[]).includes(service)) throw new UsageError(`--service ${service}: expected one of ${REDRIVE_SERVICES.join(', ')}`);
  const code = optionalText(opts.code, '--code');
  const from = opts.from !== undefined ? parseDlqPosition(opts.from, '--from') : undefined;
  const to = opts.to !== undefined ? parseDlqPosition(opts.to, '--to') : undefined;
  if (from && to && from.partition !== to.partition) throw new UsageError(`--from ${from.partition}:${from.offset} and --to ${to.partition}:${to.offset} name different partitions: a range is on one partition of the DLQ topic`);
  if (from && to && from.offset > to.offset) throw new UsageError(`--from ${from.partition}:${from.offset} is after --to ${to.partition}:${to.offset}`);
  const dryRun = opts.dryRun === true;
  const reason = opts.reason?.trim();
  if (!dryRun && (reason === undefined || reason.length < MIN_REASON_LENGTH)) throw new UsageError(`--reason is required (why, e.g. the ticket of the fixed cause; at least ${MIN_REASON_LENGTH} characters), recorded with the redrive`);
  const partition = from?.partition ?? to?.partition;
  return {
    topic: topicName(opts.topic),
    filter: { service, ...(code ? { code } : {}) },
    ...(partition !== undefined ? { partition } : {}),
    ...(from ? { from: from.offset } : {}),
    ...(to ? { to: to.offset } : {}),
    dryRun,
    force: opts.force === true,
    ...(opts.as !== undefined ? { as: opts.as } : {}),
    ...(reason !== undefined ? { reason } : {}),
    json: opts.json === true,
  };
}

/** One line of `dlq list`: positions, codes and sizes, never the value nor the reason (docs/topics.md). */
export function listRow(l: StoredDeadLetter): Record<string, unknown> {
  return {
    dlq: dlqPositionText(l),
    time: l.time,
    service: l.service,
    code: l.code,
    source: sourcePositionText(l),
    bytes: l.value?.length ?? 0,
    redrive_of: headerText(l.originalHeaders[REDRIVE_HEADERS.of]) ?? '',
  };
}
const LIST_COLUMNS = ['dlq', 'time', 'service', 'code', 'source', 'bytes', 'redrive_of'];

/** Dead letters per service and error code, most first. */
export function summarize(letters: readonly Pick<StoredDeadLetter, 'service' | 'code'>[]): { service: string; code: string; count: number }[] {
  const counts = new Map<string, { service: string; code: string; count: number }>();
  for (const l of letters) {
    const key = `${l.service}\u0000${l.code}`;
    const c = counts.get(key) ?? { service: l.service, code: l.code, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  return [...counts.values()].sort((a, b) => b.count - a.count || a.service.localeCompare(b.service) || a.code.localeCompare(b.code));
}

/** A header or key for the terminal: printable text with e-mail addresses and phone numbers masked, else its size. */
function printable(value: Buffer | string | null | undefined): string {
  if (value === null || value === undefined) return '(none)';
  const text = Buffer.isBuffer(value) ? value.toString('utf8') : value;
  if (text.length > 200 || !/^[\x20-\x7e]*$/.test(text)) return `(${Buffer.byteLength(value)} bytes, not shown)`;
  return maskPiiInText(text);
}

/** `dlq show`: the DLQ headers, the key, the original headers, and of the value only its size, SHA-256 and schema id. */
export function showFields(topic: string, l: StoredDeadLetter): Record<string, string> {
  let wire = 'not the Confluent wire format';
  if (l.value && l.value.length > 0) {
    try {
      wire = `schema id ${unframe(l.value).schemaId}`;
    } catch {
      // stays "not the Confluent wire format"
    }
  }
  const original = Object.entries(l.originalHeaders).map(([name, v]) => [`header ${name}`, printable(Array.isArray(v) ? v[0] : v)] as const);
  return {
    dlq: `${topic} ${dlqPositionText(l)}`,
    time: l.time,
    service: l.service,
    code: l.code,
    reason: maskPiiInText(l.reason),
    source: sourcePositionText(l),
    key: printable(l.key),
    value: l.value ? `${l.value.length} bytes, sha256 ${valueSha256(l)}, ${wire} (not shown: it may hold cleartext PII)` : '(none)',
    ...Object.fromEntries(original),
  };
}

function withKafka<T>(fn: (kafka: ReturnType<typeof createKafka>) => Promise<T>): Promise<T> {
  return fn(createKafka(loadEndpoints().kafka));
}

function progress(read: number, total: number): void {
  say(`dlq: ${read} of ${total} record(s) read`);
}

function warnIncomplete(topic: string, incomplete: ReadOutcome['incomplete']): void {
  for (const { partition, cause } of incomplete) say(`warning: partition ${partition} of ${topic} not read to its end: ${cause}; run again`);
}

export function registerDlq(program: Command): void {
  const dlq = program
    .command('dlq')
    .description('inspect and redrive dead letters (audit.dlq): records a service could not process, kept for the GDPR retention (30 days) only')
    .addHelpText(
      'after',
      `\nReading moves no service's offsets (a fresh group, started at the read's start, deleted afterwards). Values are never printed: a dead letter may hold cleartext PII
from audit.raw. Exit codes: 0 done, 1 failure, 2 wrong usage, ${DLQ_EXIT.noMatch} nothing matches (show, redrive), ${DLQ_EXIT.refused} redrive refused
(the caller is not in AUDITLINE_REVEAL_PRINCIPALS_FILE, or --as names someone else). docs/topics.md: when and how to redrive.`,
    );

  dlq
    .command('list')
    .description('one line per dead letter: DLQ partition:offset, time, service, error code, source topic:partition:offset, value size; then a count per service and code')
    .option('--topic <name>', 'the DLQ topic', TOPICS.dlq)
    .option('--service <name>', 'only dead letters of this service (tokenizer, hotstore, archiver, alerts)')
    .option('--code <code>', 'only this error code, e.g. TOKENIZE_FAILED')
    .option('--source-topic <name>', 'only dead letters whose source record came from this topic')
    .option('--since <time>', 'only dead letters written since: a duration (15m, 1h, 7d), a date (2026-03-01, midnight UTC) or an ISO 8601 time with zone (2026-03-01T08:00:00Z)')
    .option('--limit <n>', 'most lines printed (the summary counts every match)', '1000')
    .option('--json', 'print {"dead_letters": [...], "summary": [...], "matched": N, "incomplete": [...]} instead of a table (incomplete: partitions not read to their end, with the cause)')
    .action(async (raw: { topic: string; service?: string; code?: string; sourceTopic?: string; since?: string; limit: string; json?: boolean }) => {
      const opts = parseListOptions(raw);
      const matched: StoredDeadLetter[] = [];
      const rows: Record<string, unknown>[] = [];
      const outcome = await withKafka((kafka) =>
        readDeadLetters(
          kafka,
          opts.topic,
          opts.filter.sinceMs !== undefined ? { sinceMs: opts.filter.sinceMs } : {},
          (letter) => {
            if (!matchesFilter(letter, opts.filter)) return;
            // Keep only what the summary needs beyond the printed lines: values are not held in memory.
            matched.push({ ...letter, value: null, key: null });
            if (rows.length < opts.limit) rows.push(listRow(letter));
          },
          { progress },
        ),
      );
      warnIncomplete(opts.topic, outcome.incomplete);
      const summary = summarize(matched);
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ dead_letters: rows, summary, matched: matched.length, incomplete: outcome.incomplete }, null, 2)}\n`);
      } else if (rows.length > 0) {
        process.stdout.write(renderRows(rows, LIST_COLUMNS, 'table'));
        process.stdout.write(`\n${renderRows(summary, ['service', 'code', 'count'], 'table')}`);
      }
      if (matched.length > rows.length) say(`${matched.length - rows.length} more dead letter(s) match; raise --limit to list them`);
      say(`${matched.length} dead letter(s) match of ${outcome.read} read from ${opts.topic}`);
    });

  dlq
    .command('show')
    .description('the headers of one dead letter (DLQ headers, key, the source record\'s headers) and its value\'s size, SHA-256 and schema id; never the value')
    .argument('<position>', 'the dead letter\'s <partition>:<offset> on the DLQ topic, as `dlq list` prints it')
    .option('--topic <name>', 'the DLQ topic', TOPICS.dlq)
    .option('--json', 'print the fields as one JSON object')
    .addHelpText(
      'after',
      `\nThe value is not shown, by design: audit.dlq is restricted like audit.raw and a dead letter of the tokenizer holds the
event in cleartext. Fix the cause from the code, reason and schema id, then redrive; whoever must read the payload itself
does so with their own Kafka access to the topic. Reasons, keys and headers are printed with e-mail addresses and phone
numbers masked. Exit ${DLQ_EXIT.noMatch}: no dead letter at that position (never written, aborted, or expired); exit 1: the\nread did not reach it (held back by an open transaction, or timed out; run again).`,
    )
    .action(async (rawPosition: string, raw: { topic: string; json?: boolean }) => {
      const position = parseDlqPosition(rawPosition, 'position');
      const topic = topicName(raw.topic);
      const { letter, incomplete } = await withKafka((kafka) => readDeadLetterAt(kafka, topic, position));
      if (incomplete !== undefined) {
        say(`${topic} ${position.partition}:${position.offset} not read: ${incomplete}; run again`);
        process.exitCode = EXIT.failure;
        return;
      }
      if (letter === undefined) {
        say(`${topic} holds no dead letter at ${position.partition}:${position.offset} (never written, a record of an aborted transaction or a transaction marker, or older than its retention)`);
        process.exitCode = DLQ_EXIT.noMatch;
        return;
      }
      const fields = showFields(topic, letter);
      if (raw.json) {
        process.stdout.write(`${JSON.stringify(fields, null, 2)}\n`);
        return;
      }
      const width = Math.max(...Object.keys(fields).map((k) => k.length));
      process.stdout.write(Object.entries(fields).map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n') + '\n');
    });

  dlq
    .command('redrive')
    .description('re-publish one service\'s dead letters to their source topics (value, key and original headers byte for byte), so the service handles them again once the cause is fixed')
    .option('--topic <name>', 'the DLQ topic', TOPICS.dlq)
    .option('--service <name>', 'the service whose dead letters are sent (required)')
    .option('--code <code>', 'only this error code')
    .option('--from <position>', 'first dead letter, <partition>:<offset> (inclusive); with --to, on the same partition')
    .option('--to <position>', 'last dead letter, <partition>:<offset> (inclusive)')
    .option('--dry-run', 'print what would be sent and skipped; send and record nothing')
    .option('--force', 'send again dead letters an earlier redrive sent or may have sent (in doubt)')
    .option('--as <principal>', 'who redrives, recorded (with AUDITLINE_REVEAL_PRINCIPALS_FILE the caller is authenticated instead)')
    .option('--reason <text>', `why, e.g. the ticket of the fixed cause (at least ${MIN_REASON_LENGTH} characters), recorded`)
    .option('--json', 'print {"redrive_id", "sent": [...], "skipped": [...]} instead of a table')
    .addHelpText(
      'after',
      `\nEach dead letter is sent once: a redrive is recorded per dead letter in ClickHouse (dlq_redrives: who, when, why, which
DLQ and source offsets, value SHA-256) before and after it is sent, and a second run skips what was sent ('already redriven'), what a
stopped run may have sent ('in doubt': look for header ${REDRIVE_HEADERS.of} on the source topic), and a second dead letter of the
same source record. --force sends them anyway. The redriven record carries ${REDRIVE_HEADERS.of} and ${REDRIVE_HEADERS.id}.
It is sent in Kafka transactions of one transactional id per DLQ topic: a redrive started while another runs stops that one.
Exit codes: 0 sent (or nothing left to send), 1 failure (a source topic missing or not authorized, Kafka or ClickHouse unreachable: what was
recorded as sending is reported in doubt by the next run), 2 wrong usage, ${DLQ_EXIT.noMatch} no dead letter matches, ${DLQ_EXIT.refused} caller refused.`,
    )
    .action(async (raw: { topic: string; service?: string; code?: string; from?: string; to?: string; dryRun?: boolean; force?: boolean; as?: string; reason?: string; json?: boolean }) => {
      const opts = parseRedriveOptions(raw);
      // Read before anything else: a bad topic setting fails before the DLQ is read.
      const inputs = serviceInputs();
      let actor: RedriveActor | undefined;
      if (!opts.dryRun) {
        const caller = identifyNamedCaller(opts.as);
        const refusal = callerRefusal(caller);
        if (refusal !== undefined) {
          say(`redrive refused: ${refusal}`);
          process.exitCode = DLQ_EXIT.refused;
          return;
        }
        actor = { principal: caller.principal, identifiedBy: caller.identifiedBy ?? 'claimed', reason: opts.reason! };
      }
      const endpoints = loadEndpoints();
      const kafka = createKafka(endpoints.kafka);
      const selected: StoredDeadLetter[] = [];
      const range = { ...(opts.partition !== undefined ? { partition: opts.partition } : {}), ...(opts.from !== undefined ? { from: opts.from } : {}), ...(opts.to !== undefined ? { to: opts.to } : {}) };
      const outcome = await readDeadLetters(kafka, opts.topic, range, (l) => matchesFilter(l, opts.filter) && selected.push(l), { progress });
      warnIncomplete(opts.topic, outcome.incomplete);
      if (selected.length === 0) {
        say(`no dead letter of ${opts.filter.service}${opts.filter.code ? ` with code ${opts.filter.code}` : ''} in the selected part of ${opts.topic} (${outcome.read} read)`);
        if (opts.json) process.stdout.write(`${JSON.stringify({ redrive_id: null, sent: [], skipped: [], incomplete: outcome.incomplete }, null, 2)}\n`);
        process.exitCode = DLQ_EXIT.noMatch;
        return;
      }
      const client = createClickHouse(endpoints.clickhouse);
      // Before the redrive log is read: from here on, a redrive of this DLQ topic that started earlier sends nothing
      // more (fenced), so what it recorded as sending is what this one reads. A dry run sends nothing and fences none.
      const producer = opts.dryRun ? undefined : await redriveProducer(kafka, opts.topic);
      try {
        const log = new RedriveLog(client, endpoints.clickhouse.database);
        const plan = planRedrive(selected, await log.history(opts.topic), { force: opts.force, dlqTopic: opts.topic, inputs });
        const redriveId = randomUUID();
        if (producer && plan.send.length > 0) await send(kafka, producer, log, redriveId, actor!, opts.topic, plan.send);
        const action = opts.dryRun ? 'would send' : 'sent';
        const rows = [...plan.send.map((l) => ({ ...listRow(l), action })), ...plan.skipped.map(({ letter, cause }) => ({ ...listRow(letter), action: `skipped: ${cause}` }))];
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ redrive_id: opts.dryRun || plan.send.length === 0 ? null : redriveId, dry_run: opts.dryRun, sent: opts.dryRun ? [] : plan.send.map(listRow), would_send: opts.dryRun ? plan.send.map(listRow) : [], skipped: plan.skipped.map(({ letter, cause }) => ({ ...listRow(letter), cause })), incomplete: outcome.incomplete }, null, 2)}\n`);
        } else {
          process.stdout.write(renderRows(rows, ['dlq', 'service', 'code', 'source', 'bytes', 'action'], 'table'));
        }
        const skipped = plan.skipped.length > 0 ? `; ${plan.skipped.length} skipped (${summarizeCauses(plan.skipped.map((s) => s.cause))})` : '';
        if (opts.dryRun) say(`dry run: ${plan.send.length} dead letter(s) would be sent${skipped}; nothing sent or recorded`);
        else if (plan.send.length === 0) say(`nothing sent${skipped}${opts.force ? '' : '; --force sends them again'}`);
        else say(`redrive ${redriveId}: ${plan.send.length} dead letter(s) sent to ${[...new Set(plan.send.map((l) => l.sourceTopic))].join(', ')}${skipped}; recorded in ${endpoints.clickhouse.database}.dlq_redrives`);
      } finally {
        await producer?.disconnect().catch(() => undefined);
        await client.close();
      }
    });
}

/**
 * The producer of a redrive: transactional, with one transactional id per DLQ topic
 * (DLQ_REDRIVE_TRANSACTIONAL_ID_PREFIX), initialized at once. Initializing it fences any producer of an earlier
 * redrive of the same DLQ topic that is still running: the broker aborts its open transaction, and its next send or
 * commit fails, so it stops. That is the exclusion between two redrives; the redrive log (ClickHouse, no
 * transactions) alone could not give it: both runs could read it before either recorded anything.
 */
async function redriveProducer(kafka: ReturnType<typeof createKafka>, dlqTopic: string): Promise<Producer> {
  const producer = kafka.producer({
    transactionalId: `${DLQ_REDRIVE_TRANSACTIONAL_ID_PREFIX}${dlqTopic}`,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Murmur2Partitioner,
  });
  await producer.connect();
  try {
    // producer.transaction() sends InitProducerId for the transactional id: the fencing step. Nothing is in it.
    await (await producer.transaction()).abort();
  } catch (err) {
    await producer.disconnect().catch(() => undefined);
    throw new AuditlineError('KAFKA_UNAVAILABLE', `cannot start the redrive's Kafka transactions (transactional id ${DLQ_REDRIVE_TRANSACTIONAL_ID_PREFIX}${dlqTopic}): ${errorMessage(err)}`, { cause: err });
  }
  return producer;
}

function summarizeCauses(causes: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const c of causes) counts.set(c, (counts.get(c) ?? 0) + 1);
  return [...counts].map(([c, n]) => `${n} ${c}`).join(', ');
}

/**
 * Sends the planned dead letters to their source topics in runs of at most
 * 512 KiB per topic, in DLQ order: each run recorded `sending` first, then
 * sent in a Kafka transaction of `producer` (redriveProducer; murmur2 on the
 * original key: the partition its producer chose) and committed, then
 * recorded `sent`. A run fenced by a later redrive stops here: its current
 * transaction is aborted by the broker, and its letters stay `sending`.
 */
async function send(kafka: ReturnType<typeof createKafka>, producer: Producer, log: RedriveLog, redriveId: string, actor: RedriveActor, dlqTopic: string, letters: readonly StoredDeadLetter[]): Promise<void> {
  const topics = [...new Set(letters.map((l) => l.sourceTopic))];
  await requireTopics(kafka, topics, 'source topic(s) of the selected dead letters:', '; nothing was sent');
  for (const topic of topics) {
    const mine = letters.filter((l) => l.sourceTopic === topic);
    const messages = mine.map((l): Message & { letter: StoredDeadLetter } => ({ ...redriveMessage(l, { of: `${dlqTopic}:${dlqPositionText(l)}`, id: redriveId }), letter: l }));
    for (const run of chunkBySize(messages)) {
      const runLetters = (run as (Message & { letter: StoredDeadLetter })[]).map((m) => m.letter);
      await log.record('sending', redriveId, actor, dlqTopic, runLetters);
      const transaction = await producer.transaction();
      try {
        await transaction.send({ topic, messages: run.map(({ key, value, headers }) => ({ key, value, headers })) });
        await transaction.commit();
      } catch (err) {
        if (isFencedError(err)) {
          throw new AuditlineError('PRODUCER_FENCED', `redrive ${redriveId}: another redrive of ${dlqTopic} started and took over; this one stopped and sends nothing more (${runLetters.length} dead letter(s) recorded as sending, not committed, are reported in doubt by the next run)`, { cause: err });
        }
        if (transaction.isActive()) await transaction.abort().catch(() => undefined);
        throw new AuditlineError('KAFKA_UNAVAILABLE', `redrive ${redriveId}: sending ${runLetters.length} dead letter(s) to ${topic} failed (${errorMessage(err)}); they are recorded as sending, and the next redrive reports them in doubt`, { cause: err });
      }
      await log.record('sent', redriveId, actor, dlqTopic, runLetters).catch((err: unknown) => {
        throw isAuditlineError(err) ? new AuditlineError(err.code, `redrive ${redriveId}: ${runLetters.length} dead letter(s) were sent to ${topic} but not recorded as sent (${err.message}); the next redrive reports them in doubt`, { cause: err }) : err;
      });
    }
  }
}
