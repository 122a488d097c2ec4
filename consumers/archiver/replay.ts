import type { ClickHouseClient } from '@clickhouse/client';
import type { S3Client } from '@aws-sdk/client-s3';
import { AuditlineError } from '../../core/errors.js';
import { executionKnown, executionRecord } from '../hotstore/index.js';
import type { StoredExecutionRecord } from '../hotstore/queries.js';
import { isoFromClickhouseTime } from '../../core/clients/clickhouse-time.js';
import { auditEventSchema, type AuditEvent } from '../../schemas/index.js';
import { readArchiveObjects, type RestoreOptions } from './archive-reader.js';
import type { ArchiveIndex } from './index-store.js';
import type { ObjectStore } from './object-store.js';
import { replayFromEvents, replayFromHotstore, type ReplayDocument } from './replay-document.js';

export type ReplaySource = 'auto' | 'hotstore' | 'archive';

export interface ReplayDeps {
  clickhouse: ClickHouseClient;
  database: string;
  s3: S3Client;
  store: ObjectStore;
  index: Pick<ArchiveIndex, 'objectsOf'>;
  /**
   * Days the hot store keeps input, outputs, errors and reasons (its PII column TTLs: retentionDaysFor(retention,
   * 'pii')). An execution with events older than that is rebuilt from the archive under `auto` when the index has
   * it: the hot store still knows it (its rows live longer) but has emptied those fields. Without it, never.
   */
  piiRetentionDays?: number;
  now?: () => number;
}

export type ReplayOutcome = { document: ReplayDocument } | { pending: string[]; objects: string[] };

/**
 * Rebuilds an execution: from the hot store while it knows the execution,
 * else from the archive objects the index names (restoring Glacier objects
 * first; without `wait` that returns the pending keys). EXECUTION_NOT_FOUND
 * when neither has it.
 */
export async function replayExecution(deps: ReplayDeps, executionId: string, source: ReplaySource, restore: RestoreOptions): Promise<ReplayOutcome> {
  if (source === 'hotstore' || (source === 'auto' && (await executionKnown(deps.clickhouse, deps.database, executionId)))) {
    const record = await executionRecord(deps.clickhouse, deps.database, executionId);
    if (!record.started && record.steps.length === 0 && !record.result) throw notFound(executionId, 'the hot store');
    if (source === 'auto' && pastPiiRetention(record, deps)) {
      const archived = await fromArchive(deps, executionId, restore);
      if (archived) return archived;
    }
    return { document: replayFromHotstore(executionId, record) };
  }
  const archived = await fromArchive(deps, executionId, restore);
  if (!archived) throw notFound(executionId, source === 'archive' ? 'the archive index' : 'the hot store or the archive index');
  return archived;
}

/** True when part of the execution is older than the hot store's PII retention: its input, outputs and errors may be emptied there. */
function pastPiiRetention(record: StoredExecutionRecord, deps: ReplayDeps): boolean {
  if (deps.piiRetentionDays === undefined) return false;
  const times = [record.started?.start_time, ...record.steps.map((s) => s.start_time), record.result?.end_time].filter((t): t is string => Boolean(t)).map((t) => Date.parse(isoFromClickhouseTime(t)));
  const oldest = Math.min(...times.filter((t) => Number.isFinite(t)));
  return oldest < (deps.now ?? Date.now)() - deps.piiRetentionDays * 86_400_000;
}

/** The execution rebuilt from the archive objects the index names; undefined when the index has none. */
async function fromArchive(deps: ReplayDeps, executionId: string, restore: RestoreOptions): Promise<ReplayOutcome | undefined> {
  const indexed = await deps.index.objectsOf(executionId);
  const objects = indexed.map((o) => o.object_key);
  if (objects.length === 0) return undefined;
  const read = await readArchiveObjects(deps.s3, deps.store, objects, restore, auditEventSchema().raw as never, new Map(indexed.map((o) => [o.object_key, o.object_sha256])));
  if ('pending' in read) return { pending: read.pending, objects };
  const events = read.files.flatMap((f) => f.file.records as AuditEvent[]);
  return { document: replayFromEvents(executionId, events, objects) };
}

function notFound(executionId: string, where: string): AuditlineError {
  return new AuditlineError('EXECUTION_NOT_FOUND', `execution ${executionId} is not in ${where}`, { details: { executionId } });
}
