import type { S3Client } from '@aws-sdk/client-s3';
import { ARCHIVE_PREFIXES } from '../../infra/s3/bootstrap.js';
import { readArchiveObjects, type RestoreOptions } from './archive-reader.js';
import type { ArchiveIndex, IndexRow } from './index-store.js';
import { parseObjectKey } from './keys.js';
import type { ObjectStore } from './object-store.js';

export interface ReindexOptions {
  /** Only objects of this source topic. */
  topic?: string;
  /** Only objects whose key date (first record's day, YYYY-MM-DD) lies in [fromDay, toDay]. */
  fromDay?: string;
  toDay?: string;
  restore: RestoreOptions;
  /** Objects read per round (memory bound). @default 16 */
  chunk?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface ReindexResult {
  objects: number;
  rows: number;
  /** Archived (Glacier) objects whose restore is still running: run reindex again later. */
  pending: string[];
}

/**
 * Rebuilds the execution index from the archive itself (docs/archiver.md,
 * "Index"): reads every object (after a restore where needed) and writes
 * one row per execution and object. Idempotent: rows collapse on their key.
 */
export async function reindexArchive(deps: { s3: S3Client; store: ObjectStore; index: Pick<ArchiveIndex, 'insert'> }, options: ReindexOptions): Promise<ReindexResult> {
  const prefix = options.topic ? `${ARCHIVE_PREFIXES.events}${options.topic}/` : ARCHIVE_PREFIXES.events;
  const keys = (await deps.store.list(prefix))
    .map((o) => ({ key: o.key, parsed: parseObjectKey(o.key) }))
    .filter((o) => o.parsed && (!options.fromDay || o.parsed.day >= options.fromDay) && (!options.toDay || o.parsed.day <= options.toDay));
  const chunk = options.chunk ?? 16;
  const result: ReindexResult = { objects: 0, rows: 0, pending: [] };
  for (let i = 0; i < keys.length; i += chunk) {
    const group = keys.slice(i, i + chunk);
    const read = await readArchiveObjects(deps.s3, deps.store, group.map((g) => g.key), { ...options.restore, wait: false });
    let files;
    if ('pending' in read) {
      result.pending.push(...read.pending);
      const ready = group.filter((g) => !read.pending.includes(g.key)).map((g) => g.key);
      if (ready.length === 0) continue;
      const again = await readArchiveObjects(deps.s3, deps.store, ready, { ...options.restore, wait: false });
      if ('pending' in again) continue;
      files = again.files;
    } else {
      files = read.files;
    }
    const rows: IndexRow[] = [];
    for (const { key, file, sha256 } of files) {
      const head = await deps.store.head(key);
      const parsed = parseObjectKey(key)!;
      const byExecution = new Map<string, IndexRow>();
      for (const r of file.records as { execution_id: string; workflow_id: string; event_time: number }[]) {
        const row = byExecution.get(r.execution_id);
        if (row) {
          row.events += 1;
          row.first_event_time = Math.min(row.first_event_time, r.event_time);
          row.last_event_time = Math.max(row.last_event_time, r.event_time);
          continue;
        }
        byExecution.set(r.execution_id, {
          execution_id: r.execution_id,
          object_key: key,
          workflow_id: r.workflow_id,
          first_event_time: r.event_time,
          last_event_time: r.event_time,
          events: 1,
          source_topic: parsed.topic,
          source_partition: parsed.partition,
          first_offset: parsed.firstOffset.toString(),
          last_offset: parsed.lastOffset.toString(),
          storage_class: head?.storageClass ?? 'STANDARD',
          // The hash of the bytes read, not the one the object claims (its metadata can be set by whoever uploaded it).
          object_sha256: sha256,
          object_size: head?.size ?? 0,
        });
      }
      rows.push(...byExecution.values());
      result.objects += 1;
    }
    await deps.index.insert(rows);
    result.rows += rows.length;
    options.onProgress?.(Math.min(i + chunk, keys.length), keys.length);
  }
  return result;
}
