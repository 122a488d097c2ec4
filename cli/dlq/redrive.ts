import { createHash } from 'node:crypto';
import type { ClickHouseClient } from '@clickhouse/client';
import { insertRows, queryRows } from '../../compliance/clickhouse.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import type { StoredDeadLetter } from '../../core/service/index.js';
import { maskPiiInText } from '../../consumers/tokenizer/index.js';
import { loadAlertsTopics } from '../../consumers/alerts/index.js';
import { consumerRuntimes } from '../consumer-runtimes.js';

/** `<partition>:<offset>` of a dead letter on the DLQ topic. */
export const dlqPositionText = (l: Pick<StoredDeadLetter, 'partition' | 'offset'>): string => `${l.partition}:${l.offset}`;
/** `<topic>:<partition>:<offset>` of a dead letter's source record. */
export const sourcePositionText = (l: Pick<StoredDeadLetter, 'sourceTopic' | 'sourcePartition' | 'sourceOffset'>): string => `${l.sourceTopic}:${l.sourcePartition ?? -1}:${l.sourceOffset}`;

/** The SHA-256 (hex) of a dead letter's value (of no bytes when it has none), as `dlq show` prints and the redrive log records it. */
export const valueSha256 = (l: Pick<StoredDeadLetter, 'value'>): string => createHash('sha256').update(l.value ?? Buffer.alloc(0)).digest('hex');

/**
 * What the redrive log says of earlier redrives of one DLQ topic. Entries are
 * `<position>#<value SHA-256>`: a DLQ (or source) topic created again reuses
 * offsets, and only the hash tells a new dead letter from the one redriven.
 * Rows written before migration 0021 have no hash (`<position>#`) and match
 * any value at their position.
 */
export interface RedriveHistory {
  /** DLQ positions (`p:o#sha256`) with a `sent` row. */
  sent: ReadonlySet<string>;
  /** DLQ positions with a `sending` row and no `sent` row: a redrive stopped between recording and acknowledging them. */
  inDoubt: ReadonlySet<string>;
  /** Source records (`topic:p:o#sha256`) sent, or maybe sent, by an earlier redrive. */
  sources: ReadonlySet<string>;
}

/** Whether `entries` hold `position` with this value hash, or with none (a row written before the hash was recorded). */
const seen = (entries: ReadonlySet<string>, position: string, hash: string): boolean => entries.has(`${position}#${hash}`) || entries.has(`${position}#`);

export type SkipCause = 'already redriven' | 'in doubt' | 'same source record' | 'no source topic' | 'unknown service' | `source topic is not an input of ${string}`;

/** The services that dead-letter, whose dead letters a redrive may send. */
export const REDRIVE_SERVICES = ['tokenizer', 'hotstore', 'archiver', 'alerts'] as const;

/**
 * The topics each service reads, as the services' settings name them
 * (AUDITLINE_<SERVICE>_TOPIC, AUDITLINE_ALERTS_SIGNALS_TOPIC and _OUTBOX_TOPIC,
 * defaults infra/kafka/topics.ts): the only topics a redrive sends a
 * service's dead letters to. The source topic header of a dead letter is a
 * claim of whoever wrote it (every service may write audit.dlq); without this,
 * a principal that may write the DLQ could have an operator's redrive put
 * records into a topic it may not write, e.g. cleartext into audit.events.
 */
export function serviceInputs(env: NodeJS.ProcessEnv = process.env): ReadonlyMap<string, ReadonlySet<string>> {
  const alerts = loadAlertsTopics(env);
  const runtimes = consumerRuntimes(env);
  return new Map<string, ReadonlySet<string>>([
    ['tokenizer', new Set([runtimes.tokenizer.sourceTopic])],
    ['hotstore', new Set([runtimes.hotstore.sourceTopic])],
    ['archiver', new Set([runtimes.archiver.sourceTopic])],
    ['alerts', new Set([alerts.sourceTopic, alerts.signalsTopic, alerts.outboxTopic])],
  ]);
}


export interface RedrivePlan {
  send: StoredDeadLetter[];
  skipped: { letter: StoredDeadLetter; cause: SkipCause }[];
}

/**
 * Which of the selected dead letters a redrive sends: each source record
 * once (a service dead-letters at least once, so one record can have two
 * dead letters), never one an earlier redrive sent or may have sent (in
 * doubt), unless `force`; never one without a source topic to send it to
 * (no header, or the DLQ topic itself); never, not even with `force`, one of
 * a service not in `inputs`, or whose source topic is not an input of its
 * service (`serviceInputs`).
 */
export function planRedrive(letters: readonly StoredDeadLetter[], history: RedriveHistory, options: { force: boolean; dlqTopic: string; inputs: ReadonlyMap<string, ReadonlySet<string>> }): RedrivePlan {
  const { force } = options;
  const plan: RedrivePlan = { send: [], skipped: [] };
  const sources = new Set<string>();
  for (const letter of letters) {
    const position = dlqPositionText(letter);
    const source = sourcePositionText(letter);
    const hash = valueSha256(letter);
    let cause: SkipCause | undefined;
    const inputs = options.inputs.get(letter.service);
    if (inputs === undefined) cause = 'unknown service';
    else if (letter.sourceTopic === '' || letter.sourceTopic === options.dlqTopic) cause = 'no source topic';
    else if (!inputs.has(letter.sourceTopic)) cause = `source topic is not an input of ${letter.service}`;
    else if (!force && seen(history.sent, position, hash)) cause = 'already redriven';
    else if (!force && seen(history.inDoubt, position, hash)) cause = 'in doubt';
    else if (sources.has(`${source}#${hash}`) || (!force && seen(history.sources, source, hash))) cause = 'same source record';
    if (cause !== undefined) {
      plan.skipped.push({ letter, cause });
      continue;
    }
    sources.add(`${source}#${hash}`);
    plan.send.push(letter);
  }
  return plan;
}

/** Who redrives and why, as recorded. */
export interface RedriveActor {
  principal: string;
  identifiedBy: string;
  reason: string;
}

/** The redrive log (table `dlq_redrives`, migrations 0020 and 0021). */
export class RedriveLog {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  async history(dlqTopic: string): Promise<RedriveHistory> {
    const rows = await queryRows<{ dlq_partition: number; dlq_offset: string; value_sha256: string; source: string; sent: number }>(
      this.client,
      'reading the redrive log',
      `SELECT dlq_partition, toString(dlq_offset) AS dlq_offset, value_sha256, concat(source_topic, ':', toString(source_partition), ':', source_offset) AS source, max(state = 'sent') AS sent
         FROM ${this.database}.dlq_redrives WHERE dlq_topic = {topic:String}
        GROUP BY dlq_partition, dlq_offset, value_sha256, source`,
      { topic: dlqTopic },
    );
    const sent = new Set<string>();
    const inDoubt = new Set<string>();
    for (const r of rows) (Number(r.sent) === 1 ? sent : inDoubt).add(`${r.dlq_partition}:${r.dlq_offset}#${r.value_sha256}`);
    return { sent, inDoubt, sources: new Set(rows.map((r) => `${r.source}#${r.value_sha256}`)) };
  }

  async record(state: 'sending' | 'sent', redriveId: string, actor: RedriveActor, dlqTopic: string, letters: readonly StoredDeadLetter[]): Promise<void> {
    const at = clickhouseTime(Date.now());
    const reason = maskPiiInText(actor.reason);
    await insertRows(
      this.client,
      `recording the redrive (${state})`,
      `${this.database}.dlq_redrives`,
      letters.map((l) => ({
        at,
        redrive_id: redriveId,
        state,
        principal: actor.principal,
        identified_by: actor.identifiedBy,
        reason,
        dlq_topic: dlqTopic,
        dlq_partition: l.partition,
        dlq_offset: l.offset,
        value_sha256: valueSha256(l),
        service: l.service,
        error_code: l.code,
        source_topic: l.sourceTopic,
        source_partition: l.sourcePartition ?? -1,
        source_offset: l.sourceOffset,
      })),
    );
  }
}
