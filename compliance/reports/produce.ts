import { randomUUID } from 'node:crypto';
import type { Writable } from 'node:stream';
import type { ClickHouseClient } from '@clickhouse/client';
import { maskPiiInText } from '../../consumers/tokenizer/index.js';
import { decideReportRequest, ReportRecords, type ReportRequest } from './records.js';
import type { ReportDocument } from './document.js';
import { writeReport, type ReportFormat, type WrittenReport } from './writers.js';

export interface ProduceDeps {
  client: ClickHouseClient;
  database: string;
  reportRoles: readonly string[];
  pdfMaxRows: number;
  /** Called after each row with the rows so far. */
  onRow?: (rows: number) => void;
  now?: () => number;
}

export type ProduceResult =
  | { outcome: 'refused'; requestId: string; reason: string }
  | { outcome: 'produced'; requestId: string; generatedAt: number; written: WrittenReport };

export interface ProduceRequest extends Omit<ReportRequest, 'requestId' | 'at' | 'format'> {
  format: ReportFormat;
}

/** `2026-07-01T00:00:00.000Z`, the form times take in parameters and headers. */
export const isoTime = (ms: number) => new Date(ms).toISOString();

/**
 * The path every report and access review takes: the request is checked
 * against AUDITLINE_REPORT_ROLES and recorded as an access record BEFORE
 * anything is read (allowed or refused; when the record cannot be written,
 * nothing is produced), then the document is streamed into `out` and the
 * file's SHA-256 recorded with the parameters.
 */
export async function produce(
  request: ProduceRequest,
  build: (ctx: { requestId: string; generatedAt: number; header: [string, string][] }) => Promise<ReportDocument>,
  out: Writable,
  deps: ProduceDeps,
  options: { endOutput?: boolean } = {},
): Promise<ProduceResult> {
  const now = deps.now ?? Date.now;
  const full: ReportRequest = { ...request, requestId: randomUUID(), at: now() };
  const records = new ReportRecords(deps.client, deps.database);
  const decision = decideReportRequest(deps.reportRoles, full);
  if (!decision.allowed) {
    await records.recordRequest(full, 'refused', decision.reason);
    return { outcome: 'refused', requestId: full.requestId, reason: decision.reason };
  }
  await records.recordRequest(full, 'allowed', '');
  const generatedAt = now();
  const header: [string, string][] = [
    ['requested by', `${full.principal} (role ${full.role})`],
    ['reason', maskPiiInText(full.reason)],
    ['request id', full.requestId],
    ['generated at', isoTime(generatedAt)],
  ];
  const doc = await build({ requestId: full.requestId, generatedAt, header });
  const written = await writeReport(doc, request.format, out, { pdfMaxRows: deps.pdfMaxRows, endOutput: options.endOutput ?? true, ...(deps.onRow ? { onRow: deps.onRow } : {}) });
  await records.recordDigest(full, written, generatedAt);
  return { outcome: 'produced', requestId: full.requestId, generatedAt, written };
}
