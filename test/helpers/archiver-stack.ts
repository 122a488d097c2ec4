import { generateKeyPairSync } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, ListObjectVersionsCommand, RestoreObjectCommand } from '@aws-sdk/client-s3';
import { createS3 } from '../../core/clients/s3.js';
import { bootstrapBucket } from '../../infra/s3/bootstrap.js';
import { loadRetention } from '../../infra/retention.js';
import type { ClickHouseClient } from '@clickhouse/client';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { ArchiverService, decodeContainerFile, loadArchiverConfig } from '../../consumers/archiver/index.js';
import { committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, endpoints, waitFor } from './hotstore-stack.js';
import { uniqueName } from './names.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export const s3 = createS3(endpoints.s3);

/** A fresh archive bucket as `setup` makes it (versioning, lifecycle) with or without Object Lock. */
export async function createArchiveBucket(objectLock: boolean): Promise<string> {
  const bucket = uniqueName(objectLock ? 'it-arch' : 'it-arch-nolock');
  await bootstrapBucket(s3, { bucket, retention: loadRetention(), objectLock });
  return bucket;
}

/** An archive under test: its own database (archive_index), source and DLQ topics, consumer group and bucket. */
export interface TestArchive {
  database: string;
  bucket: string;
  names: { topic: string; dlq: string; group: string };
  /** Deletes its topics, group and database (buckets stay, as in every archiver test). */
  drop(): Promise<void>;
}

/** A fresh TestArchive named after `tag` (`arch-time`: topics `it-arch-time-…`, database `it_arch_time_…`). */
export async function createTestArchive(client: ClickHouseClient, tag: string, o: { partitions: number; objectLock: boolean }): Promise<TestArchive> {
  const database = await createHotstoreDatabase(client, `it_${tag.replace(/-/g, '_')}`);
  const names = await createHotstoreTopics(tag, o.partitions);
  const bucket = await createArchiveBucket(o.objectLock);
  return {
    database,
    bucket,
    names,
    drop: async () => {
      await dropHotstoreTopics(names, [names.group]);
      await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    },
  };
}

/** A fresh Ed25519 key pair in PEM. */
export function signingKeyPem(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** Environment of an archiver on the test's own topic, group, database and bucket. */
export function archiverEnv(o: { topic: string; dlq: string; group: string; database: string; bucket: string; signingKey: string }, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AUDITLINE_CLICKHOUSE_DATABASE: o.database,
    AUDITLINE_S3_BUCKET: o.bucket,
    AUDITLINE_ARCHIVER_TOPIC: o.topic,
    AUDITLINE_ARCHIVER_DLQ_TOPIC: o.dlq,
    AUDITLINE_ARCHIVER_GROUP_ID: o.group,
    AUDITLINE_ARCHIVER_SIGNING_KEY: o.signingKey,
    AUDITLINE_ARCHIVER_FLUSH_MS: '100',
    AUDITLINE_ARCHIVER_ROLL_MS: '500',
    AUDITLINE_ARCHIVER_RETRY_INITIAL_MS: '100',
    AUDITLINE_ARCHIVER_RETRY_MAX_MS: '1000',
    AUDITLINE_ARCHIVER_LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** Runs an archiver with `env` until the group committed the whole topic of `a`, then stops it (uploads, digests). */
export async function archiveToEnd(a: TestArchive, env: NodeJS.ProcessEnv, name: string): Promise<void> {
  const service = new ArchiverService(loadArchiverConfig(env), { logger: createLogger(name, process.env.IT_LOG ?? 'silent'), registry: new Registry() });
  try {
    await service.start(new AbortController().signal);
    await waitFor('offsets committed to the end', () => committedToEnd(a.names.group, a.names.topic), 30_000);
  } finally {
    await service.stop();
  }
}

/** Every version and delete marker of the bucket under a prefix. */
export async function listVersions(bucket: string, prefix = '') {
  const versions: { key: string; versionId: string; etag: string; isLatest: boolean }[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, ...(keyMarker ? { KeyMarker: keyMarker, VersionIdMarker: versionMarker } : {}) }));
    for (const v of page.Versions ?? []) versions.push({ key: v.Key!, versionId: v.VersionId!, etag: v.ETag ?? '', isLatest: Boolean(v.IsLatest) });
    if (!page.IsTruncated) return versions;
    keyMarker = page.NextKeyMarker;
    versionMarker = page.NextVersionIdMarker;
  }
}

/** The bytes of an object, restoring it first when it sits in GLACIER / DEEP_ARCHIVE (moto restores at once). */
export async function readObject(bucket: string, key: string, versionId?: string): Promise<Buffer> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }));
  if ((head.StorageClass === 'GLACIER' || head.StorageClass === 'DEEP_ARCHIVE') && !/ongoing-request="false"/.test(head.Restore ?? '')) {
    await s3.send(new RestoreObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}), RestoreRequest: { Days: 1, GlacierJobParameters: { Tier: 'Standard' } } }));
  }
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

/** Records of every current archive object under `events/`. */
export async function archivedRecords(bucket: string): Promise<{ key: string; records: Record<string, unknown>[] }[]> {
  const keys = [...new Set((await listVersions(bucket, 'events/')).filter((v) => v.isLatest).map((v) => v.key))].sort();
  const out: { key: string; records: Record<string, unknown>[] }[] = [];
  for (const key of keys) out.push({ key, records: (await decodeContainerFile(await readObject(bucket, key))).records as Record<string, unknown>[] });
  return out;
}
