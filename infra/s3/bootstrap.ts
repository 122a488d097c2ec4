import {
  CreateBucketCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketVersioningCommand,
  GetObjectLockConfigurationCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketVersioningCommand,
  PutObjectLockConfigurationCommand,
  type LifecycleRule,
  type S3Client,
} from '@aws-sdk/client-s3';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { retentionDaysFor, type RetentionSettings } from '../retention.js';

/** Key prefixes of the archive bucket (docs/archiver.md): archived events, their digests, and the sealed PII access records (docs/tokenizer.md). */
export const ARCHIVE_PREFIXES = { events: 'events/', digests: 'digests/', 'access-log': 'access-log/' } as const;

export interface BucketBootstrapOptions {
  bucket: string;
  retention: RetentionSettings;
  /** Object Lock with a default COMPLIANCE retention (SOX). Off only for tamper tests. Default true. */
  objectLock?: boolean;
}

export interface BucketState {
  bucket: string;
  versioning: string | undefined;
  objectLock: { enabled: boolean; mode?: string; days?: number };
  lifecycleRules: LifecycleRule[];
}

/**
 * Lifecycle rules derived from the retention settings: archived events and
 * digests expire one day after their SOX retention (Object Lock forbids
 * anything earlier), old versions and failed multipart uploads are cleaned.
 */
export function lifecycleRules(retention: RetentionSettings): LifecycleRule[] {
  const days = retentionDaysFor(retention, 'sox') + 1;
  return Object.entries(ARCHIVE_PREFIXES).map(([name, prefix]) => ({
    ID: `auditline-${name}-expiry`,
    Status: 'Enabled',
    Filter: { Prefix: prefix },
    Expiration: { Days: days },
    NoncurrentVersionExpiration: { NoncurrentDays: days },
    AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
  }));
}

/**
 * Creates the archive bucket if missing, with versioning and (by default)
 * Object Lock in COMPLIANCE mode for the SOX retention, and applies the
 * lifecycle rules. Idempotent; returns the state read back from S3.
 */
export async function bootstrapBucket(s3: S3Client, options: BucketBootstrapOptions): Promise<BucketState> {
  const { bucket, retention } = options;
  const lock = options.objectLock ?? true;
  await step(`create bucket ${bucket}`, async () => {
    try {
      await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: lock }));
    } catch (err) {
      const name = (err as { name?: string }).name;
      if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw err;
    }
  });
  await step(`enable versioning on ${bucket}`, () =>
    s3.send(new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } })),
  );
  const days = retentionDaysFor(retention, 'sox');
  // Written only when it differs: S3 servers may refuse the call on a bucket that holds objects (moto: "Bucket needs
  // to be empty"), which made every run after the first fail although nothing was to change.
  if (lock && !(await lockedFor(s3, bucket, days))) {
    await step(`set Object Lock default retention on ${bucket}`, () =>
      s3.send(
        new PutObjectLockConfigurationCommand({
          Bucket: bucket,
          ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'COMPLIANCE', Days: days } } },
        }),
      ),
    );
  }
  await step(`set lifecycle rules on ${bucket}`, () =>
    s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: lifecycleRules(retention) } })),
  );
  return readBucketState(s3, bucket);
}

/** True when the bucket's Object Lock default is already COMPLIANCE for `days`. */
async function lockedFor(s3: S3Client, bucket: string, days: number): Promise<boolean> {
  const { objectLock } = await readObjectLock(s3, bucket);
  return objectLock.enabled && objectLock.mode === 'COMPLIANCE' && objectLock.days === days;
}

/** Reads versioning, Object Lock and lifecycle of a bucket. */
export async function readBucketState(s3: S3Client, bucket: string): Promise<BucketState> {
  const versioning = await step(`read versioning of ${bucket}`, () => s3.send(new GetBucketVersioningCommand({ Bucket: bucket })));
  const { objectLock } = await readObjectLock(s3, bucket);
  let lifecycleRulesRead: LifecycleRule[] = [];
  try {
    lifecycleRulesRead = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
  } catch (err) {
    if ((err as { name?: string }).name !== 'NoSuchLifecycleConfiguration') throw wrap(`read lifecycle of ${bucket}`, err);
  }
  return { bucket, versioning: versioning.Status, objectLock, lifecycleRules: lifecycleRulesRead };
}

async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw wrap(what, err);
  }
}

function wrap(what: string, err: unknown): AuditlineError {
  const name = (err as { name?: string }).name ?? '';
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const retriable = status === undefined || status >= 500 || /ECONNREFUSED|ECONNRESET|TimeoutError/.test(`${name} ${errorMessage(err)}`);
  return new AuditlineError(retriable ? 'S3_UNAVAILABLE' : 'S3_BOOTSTRAP_FAILED', `${what} failed: ${name ? `${name}: ` : ''}${errorMessage(err)}`, {
    retriable,
    cause: err,
  });
}

async function readObjectLock(s3: S3Client, bucket: string): Promise<Pick<BucketState, 'objectLock'>> {
  try {
    const cfg = (await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }))).ObjectLockConfiguration;
    const rule = cfg?.Rule?.DefaultRetention;
    return {
      objectLock: {
        enabled: cfg?.ObjectLockEnabled === 'Enabled',
        ...(rule?.Mode ? { mode: rule.Mode } : {}),
        ...(rule?.Days ? { days: rule.Days } : {}),
      },
    };
  } catch (err) {
    if ((err as { name?: string }).name !== 'ObjectLockConfigurationNotFoundError') throw wrap(`read Object Lock of ${bucket}`, err);
    return { objectLock: { enabled: false } };
  }
}
