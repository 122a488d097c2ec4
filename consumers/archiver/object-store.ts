import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, ListObjectVersionsCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { StorageClass } from './config.js';
import { errorMessage } from '../../core/errors.js';
import { isNotFound, s3Error, s3Status } from './s3-errors.js';

/** What S3 holds under a key (current version). */
export interface StoredObject {
  key: string;
  versionId: string | undefined;
  size: number;
  /** Hex SHA-256: S3's own checksum when present, else our metadata. */
  sha256: string | undefined;
  storageClass: string;
  retainUntil: Date | undefined;
  lockMode: string | undefined;
  /** Restore header (`ongoing-request="false", ...`) of an archived object. */
  restore: string | undefined;
}

export interface PutArchiveObject {
  key: string;
  body: Buffer;
  sha256: string;
  storageClass: StorageClass;
  /** COMPLIANCE retention until this date; undefined when the bucket has no Object Lock. */
  retainUntil: Date | undefined;
  metadata: Record<string, string>;
  contentType: string;
}

/** Outcome of a write: `uploaded`, `existing` (same SHA-256 already there) or `conflict` (different bytes already there; kept). */
export type PutOutcome = { outcome: 'uploaded' | 'existing' | 'conflict'; object: StoredObject };

/**
 * The archive bucket as the archiver uses it: write-once puts with
 * retention and storage class, HEAD before writing so that a retry after a
 * crash does not add a version, and listings by prefix.
 */
export class ObjectStore {
  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
  ) {}

  /**
   * HEAD of the bucket (S3 permission s3:ListBucket, which the archiver's listings need anyway): resolves when the
   * endpoint answers, the credentials are accepted and the bucket exists; else throws S3_UNAVAILABLE naming the cause.
   * `signal` bounds the whole call, the SDK's retries included.
   */
  async probe(signal: AbortSignal): Promise<void> {
    try {
      await this.s3.send(new HeadBucketCommand({ Bucket: this.bucket }), { abortSignal: signal });
    } catch (err) {
      throw s3Error(`HEAD s3://${this.bucket}`, signal.aborted ? new Error(`no answer before the probe's deadline (${errorMessage(signal.reason)})`) : err);
    }
  }

  /** HEAD of the current version, or undefined when the key does not exist (or its latest version is a delete marker). */
  async head(key: string, versionId?: string): Promise<StoredObject | undefined> {
    try {
      const h = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key, ChecksumMode: 'ENABLED', ...(versionId ? { VersionId: versionId } : {}) }));
      const checksum = h.ChecksumSHA256 && !h.ChecksumSHA256.includes('-') ? Buffer.from(h.ChecksumSHA256, 'base64').toString('hex') : undefined;
      return {
        key,
        versionId: h.VersionId,
        size: Number(h.ContentLength ?? 0),
        sha256: checksum ?? h.Metadata?.sha256,
        storageClass: h.StorageClass ?? 'STANDARD',
        retainUntil: h.ObjectLockRetainUntilDate,
        lockMode: h.ObjectLockMode,
        restore: h.Restore,
      };
    } catch (err) {
      if (isNotFound(err) || s3Status(err) === 405) return undefined;
      throw s3Error(`HEAD s3://${this.bucket}/${key}`, err);
    }
  }

  /**
   * Writes an object unless the key already holds it. A key that exists with
   * the same SHA-256 is left alone (a retry); with different bytes it is
   * also left alone and reported as a conflict: S3 would keep both versions,
   * and a key must never have two contents.
   */
  async putOnce(o: PutArchiveObject): Promise<PutOutcome> {
    const existing = await this.head(o.key);
    if (existing) return { outcome: existing.sha256 === o.sha256 ? 'existing' : 'conflict', object: existing };
    try {
      const put = await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: o.key,
          Body: o.body,
          ContentType: o.contentType,
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: Buffer.from(o.sha256, 'hex').toString('base64'),
          Metadata: { ...o.metadata, sha256: o.sha256 },
          StorageClass: o.storageClass,
          // Another writer (a member that lost the partition but not yet its upload) may race us to the key: the first write wins.
          IfNoneMatch: '*',
          ...(o.retainUntil ? { ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: o.retainUntil } : {}),
        }),
      );
      return {
        outcome: 'uploaded',
        object: {
          key: o.key,
          versionId: put.VersionId,
          size: o.body.length,
          sha256: o.sha256,
          storageClass: o.storageClass,
          retainUntil: o.retainUntil,
          lockMode: o.retainUntil ? 'COMPLIANCE' : undefined,
          restore: undefined,
        },
      };
    } catch (err) {
      if (s3Status(err) === 412) {
        const now = await this.head(o.key);
        if (now) return { outcome: now.sha256 === o.sha256 ? 'existing' : 'conflict', object: now };
      }
      throw s3Error(`PUT s3://${this.bucket}/${o.key}`, err);
    }
  }

  /** The bytes of an object (a version of it); InvalidObjectState (archived, not restored) and NoSuchKey are thrown as they come. */
  async get(key: string, versionId?: string): Promise<Buffer> {
    const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }));
    return Buffer.from(await res.Body!.transformToByteArray());
  }

  /** Every key under `prefix` after `startAfter`, in key order. */
  async list(prefix: string, startAfter?: string): Promise<{ key: string; size: number; lastModified: Date | undefined }[]> {
    const out: { key: string; size: number; lastModified: Date | undefined }[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.s3.send(
          new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : startAfter ? { StartAfter: startAfter } : {}) }),
        );
      } catch (err) {
        throw s3Error(`LIST s3://${this.bucket}/${prefix}`, err);
      }
      for (const o of page.Contents ?? []) out.push({ key: o.Key!, size: Number(o.Size ?? 0), lastModified: o.LastModified });
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out;
  }
}

/** One version (or delete marker) of a key. */
export interface Version {
  key: string;
  versionId: string;
  /** ETag of the version (MD5 of a single-part upload): equal contents, equal ETags. */
  etag: string;
  isLatest: boolean;
  lastModified: Date;
  size: number;
  deleteMarker: boolean;
}

/** Every version and delete marker under `prefix` (the whole bucket by default). */
export async function listVersions(s3: S3Client, bucket: string, prefix?: string): Promise<Version[]> {
  const out: Version[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    let page;
    try {
      page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, ...(prefix ? { Prefix: prefix } : {}), ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(versionMarker ? { VersionIdMarker: versionMarker } : {}) }));
    } catch (err) {
      throw s3Error(`LIST VERSIONS s3://${bucket}/${prefix ?? ''}`, err);
    }
    for (const v of page.Versions ?? []) {
      out.push({ key: v.Key!, versionId: v.VersionId ?? 'null', etag: v.ETag ?? '', isLatest: Boolean(v.IsLatest), lastModified: v.LastModified ?? new Date(0), size: Number(v.Size ?? 0), deleteMarker: false });
    }
    for (const m of page.DeleteMarkers ?? []) {
      out.push({ key: m.Key!, versionId: m.VersionId ?? 'null', etag: '', isLatest: Boolean(m.IsLatest), lastModified: m.LastModified ?? new Date(0), size: 0, deleteMarker: true });
    }
    if (!page.IsTruncated) return out;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
}
