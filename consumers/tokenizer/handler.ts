import { createSecretKey } from 'node:crypto';
import type { Logger } from '../../core/logger.js';
import type { Message } from 'kafkajs';
import { isAuditlineError } from '../../core/errors.js';
import { BatchAbandonedError, decodeOrDeadLetter, type BatchHandler, type DeadLetter, type DlqPublisher, type SourceRecord } from '../../core/service/index.js';
import type { AuditEvent, EventKind } from '../../schemas/index.js';
import { newDataKey, type TokenKey } from './crypto.js';
import type { ExecutionSubjects } from './execution-subjects.js';
import type { SubjectKeyStore } from './key-store.js';
import type { SubjectSource, TokenizerMetrics } from './metrics.js';
import { SealCache } from './scan.js';
import { scanEvent, sealEvent, type EventScan, type TokenizePolicy } from './tokenize-event.js';
import { MAX_RECORD_BYTES, recordBytes } from '../../core/clients/record-size.js';
import type { PartitionTransactions, TransactionalOutput } from './transactions.js';

/** A fresh key that is never stored (its key id says so): what it seals nobody can decrypt. */
const SHREDDED_KEY = () => ({ keyId: 'erased', key: createSecretKey(newDataKey()) });

/** Header on every tokenized record: the token format version. */
export const TOKENIZED_HEADER = 'auditline-tokenized';

/** True when the tokenizer wrote the record (its header is there): the readers that store events refuse any other (no cleartext PII). */
export function isTokenized(record: Pick<SourceRecord, 'headers'>): boolean {
  return record.headers[TOKENIZED_HEADER] !== undefined;
}

export interface TokenizerHandlerDeps {
  codec: { decode(message: Buffer): Promise<AuditEvent> };
  encoder: { encode(event: AuditEvent): Buffer };
  keys: Pick<SubjectKeyStore, 'activeKeys'>;
  executions: Pick<ExecutionSubjects, 'get' | 'remember' | 'load' | 'save'>;
  tokenKey: TokenKey;
  policy: TokenizePolicy;
  paths: Map<EventKind, string[][]>;
  transactions: Pick<PartitionTransactions, 'ready' | 'commit'>;
  dlq: Pick<DlqPublisher, 'messages' | 'topic'>;
  eventsTopic: string;
  metrics?: TokenizerMetrics;
  logger?: Pick<Logger, 'info'>;
}

interface Scanned {
  record: SourceRecord;
  scan: EventScan;
  subject?: string;
}

/**
 * The tokenizer's batch handler (one partition's records): decode, find
 * each event's data subject, tokenize and encrypt its PII, and write the
 * tokenized events, the dead letters and the source offsets in one Kafka
 * transaction (handler-managed commits). Records a predecessor already
 * committed are skipped. A retriable failure (registry, ClickHouse, Kafka)
 * throws and the whole batch is retried; a fenced producer abandons the
 * batch to the partition's new owner.
 */
export function createTokenizerHandler(deps: TokenizerHandlerDeps): BatchHandler {
  const cache = new SealCache();
  return async (records) => {
    const partition = records[0]!.partition;
    const floor = await deps.transactions.ready(partition);
    const pending = records.filter((r) => BigInt(r.offset) >= floor);
    deps.metrics?.skippedCommitted(records.length - pending.length);
    if (pending.length === 0) return { deadLetters: [] };

    const deadLetters: DeadLetter[] = [];
    const scanned: Scanned[] = [];
    for (const record of pending) {
      const decoded = await decodeOrDeadLetter(deps.codec, record);
      if ('deadLetter' in decoded) {
        deadLetters.push(decoded.deadLetter);
        continue;
      }
      const { event } = decoded;
      try {
        scanned.push({ record, scan: scanEvent(event, record.headers, deps.policy, deps.paths) });
      } catch (err) {
        deadLetters.push({ record, code: 'TOKENIZE_FAILED', reason: `event ${event.event_id}: its PII fields cannot be scanned (${isAuditlineError(err) ? err.code : 'error'})` });
      }
    }

    const newMappings = await resolveSubjects(scanned, deps);
    const keys = await deps.keys.activeKeys(scanned.flatMap((s) => (s.subject ? [s.subject] : [])));
    // The mapping is stored before the transaction: a later event of the execution may be handled by another instance.
    await deps.executions.save(newMappings);

    const out: Message[] = [];
    const kinds: EventKind[] = [];
    let bundles = 0;
    let shredded = 0;
    const values = { field: 0, email: 0, phone: 0 };
    for (const { record, scan, subject } of scanned) {
      try {
        if (subject) {
          const stored = keys.get(subject)!;
          // Published before its subject was erased, tokenized only now (it waited in audit.raw): sealed under a key
          // that is never stored, so the erasure reaches it too. Tokens and masks are written as always. "Before" by
          // the earlier of the Kafka timestamp and the event's own time: a producer's spool sent after the erasure
          // holds events that happened before it.
          const erasedBefore = stored.erasedAt !== undefined && Math.min(Number(record.timestamp), scan.event.event_time) <= stored.erasedAt;
          const key = erasedBefore ? SHREDDED_KEY() : stored;
          if (erasedBefore) shredded += 1;
          sealEvent(scan, { tokenKey: deps.tokenKey, keyId: key.keyId, key: key.key, cache });
          bundles += scan.fields.length;
          for (const f of scan.fields) for (const s of f.scan.slots) values[s.keyed ? 'field' : (s.field as 'email' | 'phone')] += 1;
        }
        const message: Message = { key: record.key, value: deps.encoder.encode(scan.event), headers: { ...record.headers, [TOKENIZED_HEADER]: 'v1' }, timestamp: record.timestamp };
        const bytes = recordBytes(message);
        if (bytes > MAX_RECORD_BYTES) {
          deadLetters.push({ record, code: 'TOKENIZE_FAILED', reason: `event ${scan.event.event_id} is ${bytes} bytes once tokenized, above the ${MAX_RECORD_BYTES} a record of the events topic may have` });
          continue;
        }
        out.push(message);
        kinds.push(scan.kind);
      } catch (err) {
        const code = isAuditlineError(err) ? err.code : 'error';
        deadLetters.push({ record, code: 'TOKENIZE_FAILED', reason: `event ${scan.event.event_id} cannot be written after tokenization (${code})` });
      }
    }

    const outputs: TransactionalOutput[] = [
      { topic: deps.eventsTopic, messages: out },
      { topic: deps.dlq.topic, messages: deps.dlq.messages(deadLetters) },
    ];
    const next = (BigInt(records[records.length - 1]!.offset) + 1n).toString();
    try {
      // With the floor the batch was filtered against: if the partition changed hands meanwhile, nothing is sent twice.
      await deps.transactions.commit(partition, outputs, next, floor);
    } catch (err) {
      if (isAuditlineError(err, 'PRODUCER_FENCED')) throw new BatchAbandonedError(err.message);
      throw err;
    }
    if (shredded > 0) deps.logger?.info({ partition, events: shredded }, 'events published before their subject was erased were sealed under a key that is never stored');
    if (deps.metrics) {
      for (const kind of kinds) deps.metrics.tokenized(kind);
      for (const [source, n] of Object.entries(values)) deps.metrics.piiValues(source, n);
      deps.metrics.encrypted(bundles);
    }
    return { deadLetters };
  };
}

/**
 * Sets the subject token of every event that holds PII (see
 * docs/tokenizer.md, "Data subjects"): an ExecutionStarted names it in its
 * input; a later event takes its execution's subject from memory, else from
 * ClickHouse, else from a subject key among its own values, else an
 * execution-scoped subject. Returns the new execution → subject mappings.
 */
async function resolveSubjects(scanned: Scanned[], deps: TokenizerHandlerDeps): Promise<{ executionId: string; subject: string }[]> {
  const mappings: { executionId: string; subject: string }[] = [];
  const misses: string[] = [];
  for (const s of scanned) {
    const exec = s.scan.event.execution_id;
    if (s.scan.kind === 'ExecutionStarted') {
      const own = s.scan.ownSubject;
      const subject = deps.tokenKey.subject(own ?? `execution:${exec}`);
      deps.executions.remember(exec, subject);
      // Execution-scoped subjects are derived from the id again wherever needed: nothing to store.
      if (own) mappings.push({ executionId: exec, subject });
      if (s.scan.values > 0) {
        s.subject = subject;
        deps.metrics?.subjectResolved(own ? 'started' : 'execution');
      }
    } else if (s.scan.values > 0 && deps.executions.get(exec) === undefined) {
      misses.push(exec);
    }
  }
  const missed = new Set(misses);
  if (misses.length > 0) await deps.executions.load(misses);
  for (const s of scanned) {
    if (s.scan.kind === 'ExecutionStarted' || s.scan.values === 0) continue;
    const exec = s.scan.event.execution_id;
    const known = deps.executions.get(exec);
    let source: SubjectSource;
    if (known !== undefined) {
      s.subject = known;
      source = missed.has(exec) ? 'store' : 'memory';
    } else {
      s.subject = deps.tokenKey.subject(s.scan.ownSubject ?? `execution:${exec}`);
      source = s.scan.ownSubject ? 'value' : 'execution';
      deps.executions.remember(exec, s.subject);
    }
    missed.delete(exec);
    deps.metrics?.subjectResolved(source);
  }
  return mappings;
}

