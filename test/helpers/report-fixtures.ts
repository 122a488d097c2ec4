import type { ClickHouseClient } from '@clickhouse/client';
import { LocalKeyWrapper, SubjectKeyStore, TokenKey } from '../../consumers/tokenizer/index.js';
import { scanField, sealSlots } from '../../consumers/tokenizer/scan.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';

const HOUR = 3_600_000;
/** The data subject of the seeded execution x2. */
export const REPORT_SUBJECT = 'report-subject@example.com';

/** Inserts rows into a table of the test database. */
export async function seed(client: ClickHouseClient, database: string, table: string, rows: Record<string, unknown>[]): Promise<void> {
  await client.insert({ table: `${database}.${table}`, values: rows, format: 'JSONEachRow' });
}

/** Free text with its e-mail addresses tokenized by the tokenizer's own scan and seal, under a key stored in the database. */
export async function tokenizedText(client: ClickHouseClient, database: string, keys: { masterKey: string; tokenKey: string }, text: string, executionId: string): Promise<string> {
  const tokenKey = new TokenKey(Buffer.from(keys.tokenKey, 'base64'));
  const store = new SubjectKeyStore(client, database, new LocalKeyWrapper(Buffer.from(keys.masterKey, 'base64')), { cacheTtlMs: 0, rotationMs: 24 * HOUR });
  const subject = tokenKey.subject(`email:${REPORT_SUBJECT}`);
  const key = (await store.activeKeys([subject])).get(subject)!;
  const scan = scanField(text, { piiFields: new Set(), detectors: new Set(['email']), keyedValuesProtected: false })!;
  sealSlots(scan.slots, { tokenKey, keyId: key.keyId, key: key.key, executionId });
  return scan.render();
}

/** The executions, outcomes, decisions, access records, erasures and alerts every report test reads. */
export interface SeededData {
  base: number;
  ids: { x1: string; x2: string; x3: string; x4: string };
  piiReason: string;
}

/**
 * Seeds a database: inside the period [base - 1 h, base + 1 d) three
 * executions of WF-A (success), WF-A (failed) and WF-B (running), one
 * WF-A execution before it, a redelivered copy of an ExecutionStarted row
 * (FINAL must collapse it), decisions (one reason tokenized), reveals,
 * erasures and alerts with deliveries.
 */
export async function seedReportData(client: ClickHouseClient, database: string, keys: { masterKey: string; tokenKey: string }, base: number): Promise<SeededData> {
  const ids = { x1: 'rpt-x1', x2: 'rpt-x2', x3: 'rpt-x3', x4: 'rpt-x4' };
  const t = (ms: number) => clickhouseTime(ms);
  const started = (id: string, wf: string, name: string, trigger: string, kind: string, who: string, at: number) => ({
    execution_id: id, workflow_id: wf, workflow_name: name, workflow_version: '1', trigger, triggered_by_kind: kind, triggered_by_id: who,
    start_time: t(at), input: '{}', event_id: `${id}-e1`, event_time: t(at), sequence: 1,
  });
  const x1 = started(ids.x1, 'WF-A', 'Invoice approval', 'manual', 'user', 'u-1', base);
  await seed(client, database, 'executions', [
    x1,
    x1,
    started(ids.x2, 'WF-A', 'Invoice approval', 'api', 'service', 'billing', base + HOUR),
    started(ids.x3, 'WF-B', 'Payout', 'schedule', 'system', 'cron', base + 2 * HOUR),
    started(ids.x4, 'WF-A', 'Invoice approval', 'manual', 'user', 'u-2', base - 3 * HOUR),
  ]);
  const finished = (id: string, wf: string, status: string, at: number, ms: number, errorType = '', errorMessage = '') => ({
    execution_id: id, workflow_id: wf, status, end_time: t(at + ms), duration_ms: ms, output: '{}', error_type: errorType, error_message: errorMessage,
    event_id: `${id}-e9`, event_time: t(at + ms), sequence: 9,
  });
  await seed(client, database, 'execution_results', [
    finished(ids.x1, 'WF-A', 'success', base, 1_500),
    finished(ids.x2, 'WF-A', 'failed', base + HOUR, 2_500, 'Timeout', 'upstream took too long'),
    finished(ids.x4, 'WF-A', 'success', base - 3 * HOUR, 700),
  ]);
  const piiReason = 'flagged for ann.pii@example.com';
  const decision = (id: string, wf: string, seq: number, step: number, taken: string, reason: string, values: string, at: number) => ({
    execution_id: id, workflow_id: wf, sequence: seq, step_id: step, branch_condition: 'amount > 1000', branch_taken: taken, branch_reason: reason,
    condition_values: values, event_id: `${id}-d${seq}`, event_time: t(at),
  });
  await seed(client, database, 'decisions', [
    decision(ids.x1, 'WF-A', 2, 1, 'auto', 'small amount', '{"amount":10}', base + 500),
    decision(ids.x2, 'WF-A', 3, 2, 'manual_review', await tokenizedText(client, database, keys, piiReason, ids.x2), '{"amount":1200}', base + HOUR + 500),
  ]);
  const access = (at: number, id: string, principal: string, role: string, exec: string, status: string, outcome: string, detail: string) => ({
    at: t(at), request_id: id, principal, role, execution_id: exec, execution_status: status, fields: ['execution.input'], reason: 'INC-4711 debugging',
    outcome, detail, values_revealed: outcome === 'allowed' ? 1 : 0, values_unrecoverable: 0,
  });
  await seed(client, database, 'pii_access_log', [
    access(base + 3 * HOUR, 'rv-1', 'eve', 'engineering', ids.x2, 'failed', 'allowed', ''),
    access(base + 4 * HOUR, 'rv-2', 'mallory', 'marketing', ids.x1, 'success', 'refused', 'role "marketing" may not reveal PII'),
  ]);
  await seed(client, database, 'erasures', [
    { erased_at: t(base + 5 * HOUR), kind: 'request', principal: 'dpo-1', subject: 'subject-token-1', key_ids: ['k1', 'k2'], reason: 'GDPR art. 17 request 88' },
    { erased_at: t(base + 6 * HOUR), kind: 'expiry', principal: 'cron', subject: 'subject-token-2', key_ids: ['k3'], reason: 'older than the GDPR retention of 30 days' },
  ]);
  const fired = (at: number, id: string, rule: string, kind: string, severity: string, key: string, summary: string, count: number) => ({
    fired_at: t(at), alert_id: id, rule, rule_kind: kind, severity, alert_key: key, channels: ['slack', 'webhook'], summary, execution_ids: [ids.x2], event_count: count, evidence: '{}',
  });
  await seed(client, database, 'alerts_fired', [
    fired(base + HOUR + 10_000, 'al-1', 'failed-with-pii', 'failed_execution', 'high', 'WF-A', 'failed execution touched PII', 1),
    fired(base + 7 * HOUR, 'al-2', 'silent-producer', 'silence', 'low', 'billing', 'producer silent for 15 minutes', 0),
  ]);
  const delivery = (at: number, channel: string, attempt: number, outcome: string, status: number) => ({
    attempted_at: t(at), alert_id: 'al-1', channel, attempt, outcome, http_status: status, error: outcome === 'failed' ? 'HTTP 503' : '', latency_ms: 20,
  });
  await seed(client, database, 'alert_deliveries', [
    delivery(base + HOUR + 11_000, 'slack', 1, 'failed', 503),
    delivery(base + HOUR + 21_000, 'slack', 2, 'delivered', 200),
    delivery(base + HOUR + 11_000, 'webhook', 1, 'delivered', 200),
  ]);
  // x2 belongs to the data subject whose e-mail its decision quotes (what the tokenizer learns from ExecutionStarted).
  await seed(client, database, 'execution_subjects', [
    { execution_id: ids.x2, subject: new TokenKey(Buffer.from(keys.tokenKey, 'base64')).subject(`email:${REPORT_SUBJECT}`), created_at: t(base + HOUR) },
  ]);
  return { base, ids, piiReason };
}

/** A small RFC 4180 CSV parser for the tests (quoted fields, doubled quotes, CRLF). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      row.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 1;
    } else field += ch;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}
