import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { ClickHouseClient } from '@clickhouse/client';
import { callerRefusal, maskPiiInText, MIN_REASON_LENGTH } from '../../consumers/tokenizer/index.js';
import { insertRows, queryRows } from '../clickhouse.js';
import { clickhouseTime } from '../../core/clients/clickhouse-time.js';

/** What was asked: the command (`report`, `access-review`), kind, format and parameters (JSON object). */
export interface ReportRequest {
  requestId: string;
  at: number;
  principal: string;
  role: string;
  /** Roles the principals file gives the caller; undefined when identity and role are only claimed (no file). */
  heldRoles?: readonly string[] | undefined;
  /** Set when `--as` names someone other than the authenticated caller. */
  claimedPrincipal?: string | undefined;
  /** How the caller was identified: `token`, `os-user` or `claimed`. */
  identifiedBy?: string | undefined;
  command: 'report' | 'access-review';
  kind: string;
  format: string;
  parameters: Record<string, unknown>;
  reason: string;
}

/** A produced file as recorded in `report_digests`. */
export interface ReportDigest {
  generated_at: string;
  request_id: string;
  sha256: string;
  bytes: number;
  rows: number;
  principal: string;
  role: string;
  command: string;
  kind: string;
  format: string;
  parameters: string;
}

/** Decides whether a principal acting in a role may request reports; the reason names the rule, never data. */
export function decideReportRequest(
  reportRoles: readonly string[],
  r: Pick<ReportRequest, 'principal' | 'role' | 'reason' | 'heldRoles' | 'claimedPrincipal'>,
): { allowed: true } | { allowed: false; reason: string } {
  if (r.principal.trim() === '') return { allowed: false, reason: 'no principal given (--as)' };
  const refusal = callerRefusal(r, r.role);
  if (refusal !== undefined) return { allowed: false, reason: refusal };
  if (r.reason.trim().length < MIN_REASON_LENGTH) return { allowed: false, reason: `a reason of at least ${MIN_REASON_LENGTH} characters is required (--reason)` };
  if (!reportRoles.includes(r.role)) return { allowed: false, reason: `role ${JSON.stringify(r.role)} may not request reports (allowed roles: ${reportRoles.join(', ')}; AUDITLINE_REPORT_ROLES)` };
  return { allowed: true };
}

/**
 * The compliance tables of migration 0010: every request (an access
 * record, allowed or refused) and every produced file's SHA-256.
 */
export class ReportRecords {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly database: string,
  ) {}

  /** Appends the access record of a request; reasons are stored with e-mail addresses and phone numbers masked. */
  async recordRequest(r: ReportRequest, outcome: 'allowed' | 'refused', detail: string): Promise<void> {
    await insertRows(this.client, 'recording the report request', `${this.database}.report_requests`, [
      {
        at: clickhouseTime(r.at),
        request_id: r.requestId,
        principal: r.principal,
        identified_by: r.identifiedBy ?? (r.heldRoles === undefined ? 'claimed' : ''),
        role: r.role,
        command: r.command,
        kind: r.kind,
        format: r.format,
        parameters: JSON.stringify(r.parameters),
        reason: maskPiiInText(r.reason),
        outcome,
        detail,
      },
    ]);
  }

  /** Records the SHA-256 of a produced file with the request's parameters. */
  async recordDigest(r: ReportRequest, file: { sha256: string; bytes: number; rows: number }, generatedAt: number): Promise<void> {
    await insertRows(this.client, 'recording the report digest', `${this.database}.report_digests`, [
      {
        generated_at: clickhouseTime(generatedAt),
        request_id: r.requestId,
        sha256: file.sha256,
        bytes: file.bytes,
        rows: file.rows,
        principal: r.principal,
        role: r.role,
        command: r.command,
        kind: r.kind,
        format: r.format,
        parameters: JSON.stringify(r.parameters),
      },
    ]);
  }

  /** Every recorded report with this SHA-256 (normally one), oldest first. */
  digestsBySha256(sha256: string): Promise<ReportDigest[]> {
    return this.digests('sha256 = {v:String} ORDER BY generated_at', sha256);
  }

  /** The recorded digest of a request, if any. */
  async digestOfRequest(requestId: string): Promise<ReportDigest | undefined> {
    return (await this.digests('request_id = {v:String} LIMIT 1', requestId))[0];
  }

  private async digests(where: string, value: string): Promise<ReportDigest[]> {
    const rows = await queryRows<ReportDigest>(
      this.client,
      'reading report digests',
      `SELECT toString(generated_at) AS generated_at, request_id, sha256, bytes, rows, principal, toString(role) AS role, toString(command) AS command,
              toString(kind) AS kind, toString(format) AS format, parameters
       FROM ${this.database}.report_digests WHERE ${where}`,
      { v: value },
    );
    return rows.map((r) => ({ ...r, bytes: Number(r.bytes), rows: Number(r.rows) }));
  }
}

/** SHA-256 (hex) of a file, read as a stream. */
export async function fileSha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
