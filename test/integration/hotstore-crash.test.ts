import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { decisionPath, executionInputs, failedExecutions } from '../../consumers/hotstore/index.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { httpGet, sample, startHotstoreChild, type HotstoreChild } from '../helpers/hotstore-child.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, groupOffsets, hotstoreEnv, publish, storedEvents, waitFor } from '../helpers/hotstore-stack.js';

const client = clickhouse();
let database: string;
let names: { topic: string; dlq: string; group: string };
const children: HotstoreChild[] = [];

before(async () => {
  database = await createHotstoreDatabase(client);
  // One partition: the first batch holds every record, and the pause catches all of them between insert and commit.
  names = await createHotstoreTopics('hs-crash', 1);
});

after(async () => {
  for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGKILL');
  await dropHotstoreTopics(names, [names.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

function start(extra: Record<string, string> = {}): HotstoreChild {
  const child = startHotstoreChild(
    hotstoreEnv(names, database, {
      AUDITLINE_HOTSTORE_FLUSH_MS: '100',
      // The dead member's partition goes to the restarted one after 10 s instead of 60 s; inserts may still take 9 s on a loaded machine.
      AUDITLINE_HOTSTORE_SESSION_TIMEOUT_MS: '10000',
      AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS: '9000',
      AUDITLINE_HOTSTORE_RETRY_MAX_MS: '3000',
      ...extra,
    }),
  );
  children.push(child);
  return child;
}

/** How many rows each event_id has in the events table as stored (no FINAL): how often its row was written. */
async function rowsPerEvent(): Promise<Map<string, number>> {
  const rs = await client.query({ query: `SELECT event_id, count() AS n FROM ${database}.events GROUP BY event_id`, format: 'JSONEachRow' });
  return new Map((await rs.json<{ event_id: string; n: string }>()).map((r) => [r.event_id, Number(r.n)]));
}

test('SIGKILL between the acknowledged insert and the offset commit, then a restart: everything is redelivered and written again, query results hold no duplicates', { timeout: 240_000 }, async () => {
  const decisions = [
    { step: 1, condition: 'amount > 10000', taken: 'manual-approval', reason: 'amount exceeds 10000' },
    { step: 2, condition: 'approved', taken: 'charge', reason: 'approved by u-7' },
  ];
  const failed = [1, 2].map(() =>
    buildExecution({ workflowId: 'WF-CRASH', status: 'failed', startedAgoMs: 60_000, steps: [{ name: 'fetch', status: 'success', attempts: 2 }, { name: 'charge', status: 'failed' }], decisions }),
  );
  const ok = buildExecution({ workflowId: 'WF-CRASH', status: 'success', startedAgoMs: 60_000, steps: [{ name: 'fetch', status: 'success' }], decisions: decisions.slice(0, 1) });
  const events = [...failed.flat(), ...ok];
  await publish(names.topic, events);

  const first = start({ AUDITLINE_HOTSTORE_TEST_PAUSE_AFTER_INSERT: 'true' });
  // Joining a fresh group took more than 60 s once when the whole suite ran at once on 2 CPUs (logs stopped at 'service started').
  await waitFor('the test hook paused the service after its insert', async () => first.logs.some((l) => l.msg === 'test hook: insert acknowledged, pausing before the offset commit'), 120_000).catch(
    (err: Error) => {
      // The whole log goes to a file (at AUDITLINE_HOTSTORE_LOG_LEVEL=trace it includes kafkajs' joins and fetches).
      const file = join(mkdtempSync(join(os.tmpdir(), 'hs-crash-')), 'service.log');
      writeFileSync(file, first.logs.map((l) => JSON.stringify(l)).join('\n'));
      throw new Error(`${err.message}; the service logged (all of it in ${file}): ${first.logs.slice(-30).map((l) => String(l.msg)).join(' | ')}${first.stderr()}`);
    },
  );
  assert.equal(await storedEvents(client, database), events.length, 'ClickHouse acknowledged every row of the batch');
  assert.equal(await committedToEnd(names.group, names.topic), false, 'the offsets were not committed');
  first.process.kill('SIGKILL');
  await first.exited;
  assert.equal(first.process.signalCode, 'SIGKILL');
  const { committed } = await groupOffsets(names.group, names.topic);
  assert.ok((committed[0] ?? -1) < 0, `nothing was committed before the kill (${committed[0]})`);

  // No merge may collapse the copies before they are counted (ReplacingMergeTree drops them only when it merges parts).
  await client.command({ query: `SYSTEM STOP MERGES ${database}.events` });
  const second = start();
  const port = await second.port;
  await waitFor('the restarted service committed the topic', () => committedToEnd(names.group, names.topic), 60_000);
  const metrics = (await httpGet(port, '/metrics')).body;
  assert.equal(sample(metrics, 'auditline_hotstore_records_total{outcome="processed"}'), events.length, 'every record was delivered and written again');
  const copies = await rowsPerEvent();
  assert.deepEqual(
    events.map((e) => [e.event_id, copies.get(e.event_id)]),
    events.map((e) => [e.event_id, 2]),
    'every row was written twice (once before the kill, once after the restart) and stays so until ReplacingMergeTree merges them',
  );
  assert.equal(copies.size, events.length, 'no other rows');
  await client.command({ query: `SYSTEM START MERGES ${database}.events` });

  // What the query patterns return is the same as after a single delivery.
  assert.equal(await storedEvents(client, database), events.length);
  const failures = await failedExecutions(client, database, { workflowId: 'WF-CRASH', sinceSeconds: 3_600, limit: 100 });
  assert.deepEqual(failures.map((f) => f.execution_id).sort(), failed.map(idOf).sort());
  const inputs = await executionInputs(client, database, idOf(failed[0]!));
  assert.deepEqual(inputs.map((r) => [r.source, r.step_id, r.attempt]), [['execution', 0, 0], ['step', 1, 1], ['step', 1, 2], ['step', 2, 1]]);
  assert.equal(inputs[0]!.status, 'failed');
  const path = await decisionPath(client, database, idOf(failed[1]!));
  assert.deepEqual(path.map((d) => [d.step_id, d.step_name, d.branch_taken]), [[1, 'fetch', 'manual-approval'], [2, 'charge', 'charge']]);
  assert.equal((await decisionPath(client, database, idOf(ok))).length, 1);

  second.process.kill('SIGTERM');
  assert.equal(await second.exited, 0, second.stderr());
});
