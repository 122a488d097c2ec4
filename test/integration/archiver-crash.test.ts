import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import type { AuditEvent } from '../../schemas/index.js';
import { parseObjectKey } from '../../consumers/archiver/index.js';
import { startServiceChild, type HotstoreChild } from '../helpers/hotstore-child.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { archivedRecords, archiverEnv, createArchiveBucket, listVersions, signingKeyPem } from '../helpers/archiver-stack.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, publish, waitFor } from '../helpers/hotstore-stack.js';

const client = clickhouse();
const children: HotstoreChild[] = [];
let database: string;
let bucket: string;
let names: { topic: string; dlq: string; group: string };

before(async () => {
  database = await createHotstoreDatabase(client, 'it_arch_crash');
  names = await createHotstoreTopics('arch-crash', 3);
  bucket = await createArchiveBucket(true);
});

after(async () => {
  for (const c of children) if (c.process.exitCode === null) c.process.kill('SIGKILL');
  await dropHotstoreTopics(names, [names.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

test('SIGKILL during uploads, restart: every event archived, no key with two contents, no overlapping objects', async () => {
  const events: AuditEvent[] = [];
  const more = async () => {
    const batch = Array.from({ length: 300 }, (_, i) => buildExecution({ workflowId: `WF-C${i % 5}`, status: i % 3 ? 'success' : 'failed', startedAgoMs: 5_000, steps: [{ name: 's', status: 'success' }] })).flat();
    await publish(names.topic, batch, { [TOKENIZED_HEADER]: 'v1' });
    events.push(...batch);
  };
  const env = archiverEnv({ ...names, database, bucket, signingKey: signingKeyPem().privatePem }, { AUDITLINE_ARCHIVER_ROLL_BYTES: '16384', AUDITLINE_ARCHIVER_ROLL_MS: '2000', AUDITLINE_ARCHIVER_STORAGE_CLASS: 'GLACIER_IR', AUDITLINE_ARCHIVER_BATCH_SIZE: '200', AUDITLINE_ARCHIVER_SESSION_TIMEOUT_MS: '6000', AUDITLINE_ARCHIVER_LOG_LEVEL: process.env.IT_LOG ?? 'warn' });

  for (let round = 0; round < 2; round++) {
    await more(); // new work for each run, so that each is killed in the middle of it
    const child = startServiceChild('archiver', env);
    children.push(child);
    const seen = (await listVersions(bucket, 'events/')).length;
    // Kill as soon as this run has stored a few objects: more uploads are in flight then.
    await waitFor('objects uploaded before the kill', async () => (await listVersions(bucket, 'events/')).length >= seen + 3, 60_000).catch((err: Error) => {
      throw new Error(`round ${round}: ${err.message}; child stderr: ${child.stderr().slice(-2000)}; logs: ${JSON.stringify(child.logs.slice(-5))}`);
    });
    child.process.kill('SIGKILL');
    assert.equal(await child.exited, null, 'killed, not exited');
  }
  const last = startServiceChild('archiver', env);
  children.push(last);
  await waitFor('offsets committed to the end after the restart', () => committedToEnd(names.group, names.topic), 90_000);
  last.process.kill('SIGTERM');
  assert.equal(await last.exited, 0, last.stderr());

  const versions = await listVersions(bucket, 'events/');
  const byKey = new Map<string, Set<string>>();
  for (const v of versions) byKey.set(v.key, new Set([...(byKey.get(v.key) ?? []), v.etag]));
  for (const [key, etags] of byKey) assert.equal(etags.size, 1, `${key} has ${etags.size} different contents`);
  assert.equal(versions.length, byKey.size, 'a retry never added a version');

  const objects = await archivedRecords(bucket);
  const archived = new Set(objects.flatMap((o) => o.records.map((r) => r.event_id as string)));
  assert.equal(events.filter((e) => !archived.has(e.event_id)).length, 0, 'every event archived');

  const ranges = new Map<number, [bigint, bigint][]>();
  for (const o of objects) {
    const k = parseObjectKey(o.key)!;
    ranges.set(k.partition, [...(ranges.get(k.partition) ?? []), [k.firstOffset, k.lastOffset]]);
  }
  for (const [partition, list] of ranges) {
    list.sort((a, b) => (a[0] < b[0] ? -1 : 1));
    for (let i = 1; i < list.length; i++) assert.ok(list[i]![0] > list[i - 1]![1], `partition ${partition}: objects ${i - 1} and ${i} overlap`);
  }
  const total = objects.reduce((n, o) => n + o.records.length, 0);
  assert.equal(total, events.length, 'no event archived twice');
  const rebuilt = children.flatMap((c) => c.logs).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('an object already starts here')).length;
  process.stderr.write(`archiver-crash: ${byKey.size} objects, ${rebuilt} rebuilt to an earlier attempt's end after a kill\n`);
});
