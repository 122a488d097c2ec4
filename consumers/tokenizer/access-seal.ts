import { createHash } from 'node:crypto';
import { GetObjectLockConfigurationCommand, type S3Client } from '@aws-sdk/client-s3';
import { AuditlineError } from '../../core/errors.js';
import { ARCHIVE_PREFIXES } from '../../infra/s3/bootstrap.js';
import { listVersions, ObjectStore } from '../archiver/object-store.js';
import { isNotFound, s3Status } from '../archiver/s3-errors.js';
import { maskPiiInText, type AccessRecord } from './audit-log.js';

/** Where sealed access records live in the bucket. */
export const ACCESS_SEAL_PREFIX = `${ARCHIVE_PREFIXES['access-log']}v1/`;

/** What sealing needs of the access log table: writing a record, and reading them back to compare. */
export interface AccessTable {
  recordAccess(r: AccessRecord): Promise<void>;
  accessRecordsBetween(from: number, to: number): Promise<AccessRecord[]>;
}

/**
 * The access log with a copy that cannot be changed: every record is first
 * written as its own object to S3 (write-once, with Object Lock COMPLIANCE
 * for the SOX retention when the bucket has Object Lock), then to the
 * `pii_access_log` table. If either write fails, the caller reveals
 * nothing. `verifyAccessLog` compares the two: a row changed, deleted or
 * added in ClickHouse, or a sealed record overwritten or hidden, is found.
 */
export class SealedAccessLog {
  constructor(
    private readonly table: Pick<AccessTable, 'recordAccess'>,
    private readonly store: ObjectStore,
    /** Retention of each sealed record in days (SOX); undefined: the bucket has no Object Lock. */
    private readonly lockDays: number | undefined,
  ) {}

  async recordAccess(r: AccessRecord): Promise<void> {
    const key = accessSealKey(r);
    const body = sealedBody({ ...r, reason: maskPiiInText(r.reason) });
    const sha256 = createHash('sha256').update(body).digest('hex');
    const put = await this.store.putOnce({
      key,
      body,
      sha256,
      storageClass: 'STANDARD',
      retainUntil: this.lockDays === undefined ? undefined : new Date(r.at + this.lockDays * 86_400_000),
      metadata: { 'auditline-kind': 'access-record' },
      contentType: 'application/json',
    });
    if (put.outcome === 'conflict') {
      throw new AuditlineError('ARCHIVE_KEY_CONFLICT', `a different access record is already sealed under ${key}; nothing is revealed`);
    }
    await this.table.recordAccess(r);
  }
}

/** Days of Object Lock for sealed records: the SOX retention when the bucket has Object Lock enabled, else undefined. */
export async function sealLockDays(s3: S3Client, bucket: string, soxDays: number): Promise<number | undefined> {
  try {
    const cfg = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
    return cfg.ObjectLockConfiguration?.ObjectLockEnabled === 'Enabled' ? soxDays : undefined;
  } catch (err) {
    // No Object Lock configuration on the bucket (404 ObjectLockConfigurationNotFoundError).
    if (isNotFound(err) || s3Status(err) === 404) return undefined;
    throw new AuditlineError('S3_UNAVAILABLE', `cannot read the Object Lock configuration of s3://${bucket}: ${(err as Error).message}`, { retriable: true, cause: err });
  }
}

/** The key of a record's sealed copy: by day, then time and request id (unique per attempt). */
export function accessSealKey(r: Pick<AccessRecord, 'at' | 'requestId'>): string {
  const day = new Date(r.at).toISOString().slice(0, 10);
  return `${ACCESS_SEAL_PREFIX}${day}/${String(r.at).padStart(15, '0')}-${r.requestId}.json`;
}

/** A record as sealed: the fields the table stores, in a fixed order (the caller masks the reason, as the table stores it). */
export function sealedBody(r: AccessRecord): Buffer {
  return Buffer.from(JSON.stringify(canonicalRecord(r)), 'utf8');
}

function canonicalRecord(r: AccessRecord): AccessRecord {
  return {
    at: r.at,
    requestId: r.requestId,
    principal: r.principal,
    identifiedBy: r.identifiedBy,
    role: r.role,
    executionId: r.executionId,
    executionStatus: r.executionStatus,
    fields: [...r.fields],
    reason: r.reason,
    outcome: r.outcome,
    detail: r.detail,
    valuesRevealed: r.valuesRevealed,
    valuesUnrecoverable: r.valuesUnrecoverable,
  };
}

/** A difference between the sealed copies and the table. */
export interface AccessLogFinding {
  kind: 'altered' | 'missing_row' | 'unsealed_row' | 'duplicate_row' | 'seal_overwritten' | 'seal_deleted' | 'no_seals' | 'before_sealing';
  key: string;
  requestId: string;
  detail: string;
}

export interface AccessLogVerification {
  /** Start of the window checked (epoch ms). */
  from: number;
  sealed: number;
  rows: number;
  /** Differences: the log is not as sealed. */
  findings: AccessLogFinding[];
  /** Rows older than the first sealed record (`before_sealing`): shown, not a difference. */
  notes: AccessLogFinding[];
}

/**
 * Compares the sealed access records of [from, to] with the table's rows:
 * a sealed record whose row is gone (`missing_row`; also an attempt whose
 * table write failed after the seal, which revealed nothing) or differs
 * (`altered`), a row without a sealed record (`unsealed_row`: written
 * around the CLI), two rows of one attempt (`duplicate_row`), a key with
 * more than one version (`seal_overwritten`) or whose latest version is a
 * delete marker (`seal_deleted`).
 */
export async function verifyAccessLog(
  s3: S3Client,
  store: ObjectStore,
  table: Pick<AccessTable, 'accessRecordsBetween'>,
  window: { from?: number; to: number; floor: number },
): Promise<AccessLogVerification> {
  const findings: AccessLogFinding[] = [];
  const seals = (await listVersions(s3, store.bucket, ACCESS_SEAL_PREFIX)).flatMap((v) => {
    const parsed = parseSealKey(v.key);
    return parsed ? [{ ...v, ...parsed }] : [];
  });
  // Rows before the first sealed record were written before sealing began: noted, not a difference. (The first seal
  // is found among all versions: under Object Lock none can be removed to move it.)
  let firstSeal: number | undefined;
  for (const v of seals) if (firstSeal === undefined || v.at < firstSeal) firstSeal = v.at;
  // By default the retention back from now (older rows have expired).
  const from = window.from ?? window.floor;
  const to = window.to;
  const byKey = new Map<string, typeof seals>();
  for (const v of seals) if (v.at >= from && v.at <= to) byKey.set(v.key, [...(byKey.get(v.key) ?? []), v]);
  const rows = await table.accessRecordsBetween(from, to);
  const rowByKey = new Map<string, AccessRecord>();
  for (const r of rows) {
    const key = accessSealKey(r);
    // A second row of one attempt (same time and request id) would hide behind the first one compared.
    if (rowByKey.has(key)) findings.push({ kind: 'duplicate_row', key, requestId: r.requestId, detail: 'more than one row in pii_access_log for this attempt' });
    else rowByKey.set(key, r);
  }
  let sealed = 0;
  for (const [key, vs] of byKey) {
    const { requestId } = vs[0]!;
    const data = vs.filter((v) => !v.deleteMarker).sort((a, b) => a.lastModified.getTime() - b.lastModified.getTime());
    if (vs.some((v) => v.deleteMarker && v.isLatest)) findings.push({ kind: 'seal_deleted', key, requestId, detail: 'the latest version is a delete marker' });
    if (data.length > 1) findings.push({ kind: 'seal_overwritten', key, requestId, detail: `${data.length} versions; the first one is compared` });
    const first = data[0];
    if (!first) continue;
    sealed += 1;
    const row = rowByKey.get(key);
    rowByKey.delete(key);
    if (!row) {
      findings.push({ kind: 'missing_row', key, requestId, detail: 'sealed, but no row in pii_access_log' });
      continue;
    }
    const sealedText = (await store.get(key, first.versionId === 'null' ? undefined : first.versionId)).toString('utf8');
    const rowText = sealedBody(row).toString('utf8');
    if (sealedText !== rowText) findings.push({ kind: 'altered', key, requestId, detail: differingFields(sealedText, rowText) });
  }
  const notes: AccessLogFinding[] = [];
  for (const [key, row] of rowByKey) {
    if (firstSeal !== undefined && row.at < firstSeal) notes.push({ kind: 'before_sealing', key, requestId: row.requestId, detail: 'a row older than the first sealed record (written before sealing began, or dated back)' });
    else if (firstSeal !== undefined) findings.push({ kind: 'unsealed_row', key, requestId: row.requestId, detail: 'a row in pii_access_log without a sealed record' });
  }
  // No sealed record at all, but rows: the wrong bucket, or copies that were removed (a bucket without Object Lock).
  if (firstSeal === undefined && rowByKey.size > 0) {
    findings.push({ kind: 'no_seals', key: `s3://${store.bucket}/${ACCESS_SEAL_PREFIX}`, requestId: '', detail: `${rowByKey.size} row(s) in pii_access_log and no sealed record in the bucket` });
  }
  return { from, sealed, rows: rows.length, findings, notes };
}

function differingFields(sealedText: string, rowText: string): string {
  let a: Record<string, unknown>;
  try {
    a = JSON.parse(sealedText) as Record<string, unknown>;
  } catch {
    return 'the sealed record is not JSON';
  }
  const b = JSON.parse(rowText) as Record<string, unknown>;
  const names = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
  return `the row differs in: ${names.join(', ')}`;
}

/** The time and request id in a key {@link accessSealKey} made; undefined for any other key. */
function parseSealKey(key: string): { at: number; requestId: string } | undefined {
  const m = /\/(\d{15})-([^/]+)\.json$/.exec(key);
  return m ? { at: Number(m[1]), requestId: m[2]! } : undefined;
}
