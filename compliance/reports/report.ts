import type { ClickHouseClient } from '@clickhouse/client';
import { holdsTokenMark, reveal, type RevealDeps, type RevealPolicy, type RevealRequest } from '../../consumers/tokenizer/index.js';
import { streamRows } from '../clickhouse.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';
import type { ReportDocument } from './document.js';
import { REPORT_KINDS, type ReportFilter, type ReportKind } from './kinds.js';
import { isoTime } from './produce.js';
import { retentionDaysFor, type RetentionSettings } from '../../infra/retention.js';

/** Reveal settings of a report: who asks, and the tokenizer's reveal dependencies (key store, access log, policy). */
export interface ReportReveal {
  /** The caller as the CLI identified it (cli/commands/reveal-access.ts, identifyCliCaller). */
  caller: Pick<RevealRequest, 'principal' | 'heldRoles' | 'claimedPrincipal' | 'identifiedBy'>;
  role: string;
  reason: string;
  policy: RevealPolicy;
  deps: Omit<RevealDeps, 'policy'>;
}

/** The report kind of a name, or undefined. */
export function reportKind(name: string): ReportKind | undefined {
  return Object.prototype.hasOwnProperty.call(REPORT_KINDS, name) ? REPORT_KINDS[name] : undefined;
}

/** Parameters of a report as recorded and printed (subjects as tokens, never identifiers). */
export function reportParameters(kind: ReportKind, f: ReportFilter, revealRequested: boolean): Record<string, unknown> {
  return {
    kind: kind.name,
    from: isoTime(f.from),
    to: isoTime(f.to),
    workflows: [...f.workflows],
    ...(f.executionId !== undefined ? { execution_id: f.executionId } : {}),
    subjects: [...f.subjects],
    reveal: revealRequested,
  };
}

/** The query parameters of a kind's SQL. */
export function reportQueryParams(f: ReportFilter): Record<string, unknown> {
  return { from: clickhouseTime(f.from), to: clickhouseTime(f.to), workflows: [...f.workflows], subjects: [...f.subjects], ...(f.executionId !== undefined ? { execution_id: f.executionId } : {}) };
}

/**
 * What the report cannot show because its rows have expired: the hot store
 * keeps executions, steps and decisions for the operational retention (90
 * days by default), the subject-to-execution mapping for the GDPR retention
 * (30 days). Empty when the period is fully covered.
 */
export function reportCoverage(kind: ReportKind, f: ReportFilter, retention: RetentionSettings, now: number): string[] {
  const notes: string[] = [];
  const days = retentionDaysFor(retention, kind.keptFor);
  const kept = now - days * 86_400_000;
  if (f.from < kept) {
    notes.push(
      `rows before ${isoTime(kept)} have expired: the tables of this kind keep ${days} days (${retention.dataClasses[kind.keptFor]}); the archive keeps every event ${retentionDaysFor(retention, 'sox')} days (auditline replay <execution_id>)`,
    );
  }
  const piiDays = retentionDaysFor(retention, 'pii');
  const piiKept = now - piiDays * 86_400_000;
  if (f.subjects.length > 0 && kind.filters.includes('subject') && f.from < piiKept) {
    notes.push(`the subject filter finds executions from ${isoTime(piiKept)} on: which executions belong to a subject is kept ${piiDays} days (${retention.dataClasses.pii})`);
  }
  if (kind.piiColumns.length > 0 && f.from < piiKept) {
    notes.push(`${kind.piiColumns.join(', ')} of rows before ${isoTime(piiKept)} are empty: PII columns are kept ${piiDays} days (${retention.dataClasses.pii})`);
  }
  return notes;
}

/**
 * A report of one kind over a period as a document whose rows stream from
 * ClickHouse. PII columns stay tokenized unless `revealWith` is given and
 * the reveal policy allows the role for the row's execution: then the
 * tokenizer's reveal() decrypts them and records one access record per
 * execution row (allowed or refused) in pii_access_log.
 */
export function reportDocument(
  kind: ReportKind,
  f: ReportFilter,
  ctx: { client: ClickHouseClient; database: string; header: [string, string][]; revealWith?: ReportReveal; coverage?: readonly string[] },
): ReportDocument {
  const revealWith = ctx.revealWith;
  const canReveal = revealWith !== undefined && kind.piiColumns.length > 0 && Object.prototype.hasOwnProperty.call(revealWith.policy, revealWith.role);
  const pii =
    kind.piiColumns.length === 0
      ? 'this kind has no PII columns'
      : canReveal
        ? `revealed where the reveal policy allows role ${revealWith.role} (each reveal recorded in pii_access_log); tokenized elsewhere`
        : revealWith
          ? `tokenized: role ${revealWith.role} may not reveal PII (AUDITLINE_REVEAL_POLICY)`
          : 'tokenized (as stored)';
  const rows = streamRows<Record<string, unknown>>(ctx.client, `reading the ${kind.name} report`, kind.sql(ctx.database, f), reportQueryParams(f));
  return {
    title: `Auditline report: ${kind.title}`,
    parameters: [
      ['kind', kind.name],
      ['period', `${isoTime(f.from)} to ${isoTime(f.to)} (end exclusive)`],
      ...(kind.filters.includes('workflow') ? [['workflows', f.workflows.length > 0 ? f.workflows.join(', ') : 'all'] as [string, string]] : []),
      ...(f.executionId !== undefined ? [['execution', f.executionId] as [string, string]] : []),
      ...(f.subjects.length > 0 ? [['subjects (tokens)', f.subjects.join(', ')] as [string, string]] : []),
      ['PII', pii],
      ...(ctx.coverage ?? []).map((note): [string, string] => ['coverage', note]),
      ...ctx.header,
    ],
    columns: kind.columns,
    rows: canReveal ? revealRows(rows, kind, revealWith, ctx.header) : rows,
    totals: kind.totals,
  };
}

async function* revealRows(batches: AsyncIterable<readonly Record<string, unknown>[]>, kind: ReportKind, r: ReportReveal, header: [string, string][]): AsyncGenerator<Record<string, unknown>[]> {
  for await (const batch of batches) {
    const out: Record<string, unknown>[] = [];
    for (const row of batch) out.push(await revealRow(row, kind, r, header));
    yield out;
  }
}

async function revealRow(row: Record<string, unknown>, kind: ReportKind, r: ReportReveal, header: [string, string][]): Promise<Record<string, unknown>> {
  const requestId = header.find(([k]) => k === 'request id')?.[1] ?? '';
  const fields = kind.piiColumns.filter((c) => typeof row[c] === 'string' && holdsTokenMark(row[c] as string)).map((c) => ({ name: `${kind.name}.${c}`, text: row[c] as string }));
  if (fields.length === 0) return row;
  const result = await reveal(
    { ...r.caller, role: r.role, purpose: `${r.reason} (report ${requestId})`, executionId: String(row.execution_id), status: String(row.execution_status ?? 'unknown'), fields },
    { ...r.deps, policy: r.policy },
  );
  const out = { ...row };
  for (const field of result.fields) out[field.name.slice(kind.name.length + 1)] = field.text;
  return out;
}
