import type { ClickHouseClient } from '@clickhouse/client';
import { chCall, database, selectRows } from './clickhouse.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import { detectPii } from '../../core/pii/detectors.js';
import { maskString } from '../../core/pii/mask.js';

/** One attempt to reveal cleartext, allowed or not (table `pii_access_log`). */
export interface AccessRecord {
  /** Epoch ms. */
  at: number;
  requestId: string;
  principal: string;
  /** How the principal was identified: `token`, `os-user`, `claimed` (no principals file); empty on records older than migration 0016. */
  identifiedBy: string;
  role: string;
  executionId: string;
  /** The execution's status as the reveal saw it (`unknown` when the execution was not found). */
  executionStatus: string;
  /** Names of the fields asked for, e.g. `execution.input`, `step[2].attempt[1].input_data`. */
  fields: readonly string[];
  /** Why the principal asked (e-mail addresses and phone numbers in it are masked before storing). */
  reason: string;
  outcome: 'allowed' | 'refused' | 'unrecoverable';
  /** Why it was refused or could not be decrypted; empty when allowed. */
  detail: string;
  valuesRevealed: number;
  valuesUnrecoverable: number;
}

/** One erasure (table `erasures`): a subject's keys destroyed on request, or expired. */
export interface ErasureRecord {
  at: number;
  kind: 'request' | 'expiry';
  principal: string;
  /** Subject token, never the identifier itself. */
  subject: string;
  keyIds: readonly string[];
  reason: string;
}

/**
 * The append-only audit tables of the tokenizer in ClickHouse: who asked to
 * see cleartext (and what happened), and which keys were destroyed. The
 * code only ever INSERTs into them; in production the writer's ClickHouse
 * user should be granted INSERT and SELECT only.
 */
export class TokenizerAuditLog {
  private readonly db: string;

  constructor(
    private readonly client: ClickHouseClient,
    databaseName: string,
  ) {
    this.db = database(databaseName);
  }

  async recordAccess(r: AccessRecord): Promise<void> {
    await chCall('writing the access record', () =>
      this.client.insert({
        table: `${this.db}.pii_access_log`,
        values: [
          {
            at: clickhouseTime(r.at),
            request_id: r.requestId,
            principal: r.principal,
            identified_by: r.identifiedBy,
            role: r.role,
            execution_id: r.executionId,
            execution_status: r.executionStatus,
            fields: [...r.fields],
            reason: maskPiiInText(r.reason),
            outcome: r.outcome,
            detail: r.detail,
            values_revealed: r.valuesRevealed,
            values_unrecoverable: r.valuesUnrecoverable,
          },
        ],
        format: 'JSONEachRow',
      }),
    );
  }

  async recordErasures(records: readonly ErasureRecord[]): Promise<void> {
    if (records.length === 0) return;
    await chCall('writing the erasure record', () =>
      this.client.insert({
        table: `${this.db}.erasures`,
        values: records.map((r) => ({ erased_at: clickhouseTime(r.at), kind: r.kind, principal: r.principal, subject: r.subject, key_ids: [...r.keyIds], reason: maskPiiInText(r.reason) })),
        format: 'JSONEachRow',
      }),
    );
  }

  /** Access records of an execution, oldest first. */
  async accessRecords(executionId: string): Promise<AccessRecord[]> {
    return this.selectAccess('execution_id = {id:String}', { id: executionId });
  }

  /** Access records written in [from, to] (epoch ms), oldest first. */
  async accessRecordsBetween(from: number, to: number): Promise<AccessRecord[]> {
    // `at` here is the selected alias (epoch ms), as in ORDER BY.
    return this.selectAccess('at BETWEEN {from:Int64} AND {to:Int64}', { from, to });
  }

  private async selectAccess(where: string, params: Record<string, unknown>): Promise<AccessRecord[]> {
    const rows = await selectRows<Record<string, unknown>>(
      this.client,
      'reading access records',
      `SELECT toUnixTimestamp64Milli(at) AS at, request_id, principal, identified_by, role, execution_id, execution_status, fields, reason, outcome, detail, values_revealed, values_unrecoverable
       FROM ${this.db}.pii_access_log WHERE ${where} ORDER BY at, request_id`,
      params,
    );
    return rows.map((r) => ({
      at: Number(r.at),
      requestId: String(r.request_id),
      principal: String(r.principal),
      identifiedBy: String(r.identified_by),
      role: String(r.role),
      executionId: String(r.execution_id),
      executionStatus: String(r.execution_status),
      fields: r.fields as string[],
      reason: String(r.reason),
      outcome: r.outcome as AccessRecord['outcome'],
      detail: String(r.detail),
      valuesRevealed: Number(r.values_revealed),
      valuesUnrecoverable: Number(r.values_unrecoverable),
    }));
  }

  /** Erasure records of a subject, oldest first. */
  async erasureRecords(subject: string): Promise<ErasureRecord[]> {
    const rows = await selectRows<Record<string, unknown>>(
      this.client,
      'reading erasure records',
      `SELECT toUnixTimestamp64Milli(erased_at) AS at, kind, principal, subject, key_ids, reason FROM ${this.db}.erasures WHERE subject = {subject:String} ORDER BY erased_at`,
      { subject },
    );
    return rows.map((r) => ({
      at: Number(r.at),
      kind: r.kind as ErasureRecord['kind'],
      principal: String(r.principal),
      subject: String(r.subject),
      keyIds: r.key_ids as string[],
      reason: String(r.reason),
    }));
  }
}

/** Free text typed by a person (a reason) with e-mail addresses and phone numbers masked. */
export function maskPiiInText(text: string): string {
  let out = '';
  let at = 0;
  for (const d of detectPii(text)) {
    out += text.slice(at, d.start) + maskString(text.slice(d.start, d.end));
    at = d.end;
  }
  return out + text.slice(at);
}
