import { ListObjectVersionsCommand, RestoreObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type avro from 'avsc';
import { sleep } from '../../core/service/index.js';
import { decodeContainerFile, type DecodedContainerFile } from './container-file.js';
import { sha256Hex } from './keys.js';
import type { ObjectStore } from './object-store.js';
import { isNotFound, s3Error, s3ErrorName } from './s3-errors.js';
import { isReadable } from './verify.js';

export interface RestoreOptions {
  /** Wait (polling HEAD) until restored objects are readable, up to `waitTimeoutMs`. */
  wait: boolean;
  waitTimeoutMs: number;
  pollMs: number;
  /** Days a restored copy stays readable. */
  restoreDays: number;
  tier: 'Expedited' | 'Standard' | 'Bulk';
  /** Told after each poll while waiting: objects still being restored, of how many, and the time waited so far. */
  onWaiting?: (pending: number, total: number, waitedMs: number) => void;
}

/** Each file with the SHA-256 of the bytes actually read (never a hash the object's metadata claims). */
export type ReadOutcome = { files: { key: string; file: DecodedContainerFile; sha256: string }[] } | { pending: string[] };

/**
 * Reads archive objects. Objects in GLACIER or DEEP_ARCHIVE that are not
 * restored get a RestoreObject request; without `wait` the call returns the
 * pending keys (run it again later), with `wait` it polls until they are
 * readable. GLACIER_IR and STANDARD objects are read at once.
 */
export async function readArchiveObjects(
  s3: S3Client,
  store: ObjectStore,
  keys: readonly string[],
  options: RestoreOptions,
  readerSchema?: avro.Schema,
  /** SHA-256 each key should have (from the index): a replaced current version is skipped for the original one. */
  expected?: ReadonlyMap<string, string>,
): Promise<ReadOutcome> {
  let pending = await requestRestores(s3, store, keys, options, expected);
  const deadline = Date.now() + options.waitTimeoutMs;
  while (pending.length > 0 && options.wait && Date.now() < deadline) {
    await sleep(options.pollMs);
    const still: string[] = [];
    for (const key of pending) {
      const head = await store.head(key);
      if (!head || !isReadable(head.storageClass, head.restore)) still.push(key);
    }
    pending = still;
    if (pending.length > 0) options.onWaiting?.(pending.length, keys.length, Date.now() - (deadline - options.waitTimeoutMs));
  }
  if (pending.length > 0) return { pending };
  const files: { key: string; file: DecodedContainerFile; sha256: string }[] = [];
  for (const key of keys) {
    let bytes: Buffer;
    try {
      const want = expected?.get(key);
      // A delete marker on top (a DELETE without a version id, which Object Lock allows): the recorded version is below it.
      const current = await store.get(key).catch((err: unknown) => {
        if (want && isNotFound(err)) return undefined;
        throw err;
      });
      if (want && (current === undefined || sha256Hex(current) !== want)) {
        const original = await originalVersion(s3, store, key, want, options);
        if (original === 'pending') return { pending: [key] };
        bytes = original;
      } else {
        bytes = current!;
      }
    } catch (err) {
      throw s3Error(`GET s3://${store.bucket}/${key}`, err);
    }
    files.push({ key, file: await decodeContainerFile(bytes, readerSchema), sha256: sha256Hex(bytes) });
  }
  return { files };
}

/**
 * The version of `key` whose bytes hash to `sha256`: the current version
 * was replaced (under Object Lock the archived version is still there).
 * A version's checksum (or a `sha256` it claims in its metadata) only
 * picks the candidates: its bytes are hashed and must match, so a version
 * uploaded with a forged claim is never read.
 */
async function originalVersion(s3: S3Client, store: ObjectStore, key: string, sha256: string, options: RestoreOptions): Promise<Buffer | 'pending'> {
  const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: store.bucket, Prefix: key }));
  for (const v of (listed.Versions ?? []).filter((x) => x.Key === key && !x.IsLatest)) {
    const head = await store.head(key, v.VersionId);
    if (!head || head.sha256 !== sha256) continue;
    if (!isReadable(head.storageClass, head.restore)) {
      if (head.restore === undefined) {
        await s3.send(new RestoreObjectCommand({ Bucket: store.bucket, Key: key, VersionId: v.VersionId, RestoreRequest: { Days: options.restoreDays, GlacierJobParameters: { Tier: options.tier } } }));
      }
      const after = await store.head(key, v.VersionId);
      if (!after || !isReadable(after.storageClass, after.restore)) return 'pending';
    }
    const bytes = await store.get(key, v.VersionId);
    if (sha256Hex(bytes) === sha256) return bytes;
  }
  throw Object.assign(new Error(`no version of ${key} has the SHA-256 the index recorded`), { name: 'ArchiveObjectChanged', $metadata: { httpStatusCode: 409 } });
}

/**
 * Issues RestoreObject for every archived, unrestored object; returns the keys not readable yet. A key without a
 * current version (deleted: a delete marker on top) whose SHA-256 is `expected` is left to originalVersion.
 */
async function requestRestores(s3: S3Client, store: ObjectStore, keys: readonly string[], options: RestoreOptions, expected: ReadonlyMap<string, string> | undefined): Promise<string[]> {
  const pending: string[] = [];
  for (const key of keys) {
    const head = await store.head(key);
    if (!head && expected?.has(key)) continue;
    if (!head) throw s3Error(`HEAD s3://${store.bucket}/${key}`, Object.assign(new Error('object listed by the index is missing'), { name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }));
    if (isReadable(head.storageClass, head.restore)) continue;
    if (head.restore === undefined) {
      try {
        await s3.send(new RestoreObjectCommand({ Bucket: store.bucket, Key: key, RestoreRequest: { Days: options.restoreDays, GlacierJobParameters: { Tier: options.tier } } }));
      } catch (err) {
        if (s3ErrorName(err) !== 'RestoreAlreadyInProgress') throw s3Error(`RESTORE s3://${store.bucket}/${key}`, err);
      }
      // Restores can complete at once (moto) or take hours (Glacier): look again.
      const after = await store.head(key);
      if (after && isReadable(after.storageClass, after.restore)) continue;
    }
    pending.push(key);
  }
  return pending;
}
