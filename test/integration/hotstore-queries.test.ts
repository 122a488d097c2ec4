import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { assetPath } from '../../core/paths.js';
import { decisionPath, executionInputs, executionKnown, failedExecutions } from '../../consumers/hotstore/queries.js';
import { eventToRows, type EventRows } from '../../consumers/hotstore/rows.js';
import { HotstoreWriter } from '../../consumers/hotstore/writer.js';
import { randomUUID } from 'node:crypto';
import { unwrapPayload, type AuditEvent, type ExecutionFinished } from '../../schemas/index.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { clickhouse, createHotstoreDatabase } from '../helpers/hotstore-stack.js';

const client = clickhouse();
const MIN = 60_000;
let database: string;
let writer: HotstoreWriter;

// WF-003: A failed 10 min ago (a retried step, decisions on two steps), B failed 40 min ago,
// C failed 2 h ago, D succeeded, E still running; WF-004: F failed.
const now = Date.now();
const A = buildExecution({
  workflowId: 'WF-003',
  status: 'failed',
  startedAgoMs: 10 * MIN,
  now,
  steps: [{ name: 'validate', status: 'success' }, { name: 'charge', status: 'failed', attempts: 2 }],
  decisions: [
    { step: 1, condition: 'amount > 10000', taken: 'manual-approval', reason: 'amount exceeds 10000' },
    { step: 2, condition: 'attempts < 3', taken: 'give-up', reason: 'charge failed twice' },
  ],
});
const B = buildExecution({ workflowId: 'WF-003', status: 'failed', startedAgoMs: 40 * MIN, now, steps: [{ name: 'fetch', status: 'failed' }] });
const C = buildExecution({ workflowId: 'WF-003', status: 'failed', startedAgoMs: 120 * MIN, now, steps: [{ name: 'fetch', status: 'failed' }] });
const D = buildExecution({ workflowId: 'WF-003', status: 'success', startedAgoMs: 5 * MIN, now, steps: [{ name: 'validate', status: 'success' }] });
const E = buildExecution({
  workflowId: 'WF-003',
  status: 'running',
  startedAgoMs: 3 * MIN,
  now,
  steps: [{ name: 'validate', status: 'success' }],
  decisions: [{ step: 1, condition: 'amount > 10000', taken: 'auto-approve', reason: 'trusted customer' }],
});
const F = buildExecution({ workflowId: 'WF-004', status: 'failed', startedAgoMs: 5 * MIN, now, steps: [{ name: 'fetch', status: 'failed' }] });
const ALL = [A, B, C, D, E, F];

const rowsOf = (events: readonly AuditEvent[], offset = 0): EventRows[] => events.map((e, i) => eventToRows(e, { topic: 'audit.events', partition: 0, offset: String(offset + i) }));

before(async () => {
  database = await createHotstoreDatabase(client);
  writer = new HotstoreWriter(client, database);
  const all = ALL.flat();
  // Written three times in different batch shapes, as redelivery and retried batches would: results must not change.
  assert.deepEqual(await writer.write(rowsOf(all)), { rejected: [] });
  assert.deepEqual(await writer.write(rowsOf(all.slice(0, 9), 100)), { rejected: [] });
  for (const e of ALL) await writer.write(rowsOf(e, 200));
  // A second ExecutionFinished of A (its own event id, a second later, failed again): FINAL keeps both rows.
  const again = structuredClone(A[A.length - 1]!);
  const finish = unwrapPayload(again.payload).value as ExecutionFinished;
  assert.equal(unwrapPayload(again.payload).kind, 'ExecutionFinished');
  again.event_id = randomUUID();
  finish.end_time += 1_000;
  finish.duration_ms += 1_000;
  assert.deepEqual(await writer.write(rowsOf([again], 300)), { rejected: [] });
  // A second ExecutionFinished of C that says success (forged, or a producer bug): C's outcome is conflicting.
  const other = structuredClone(C[C.length - 1]!);
  const otherFinish = unwrapPayload(other.payload).value as ExecutionFinished;
  other.event_id = randomUUID();
  otherFinish.status = 'success';
  otherFinish.error = null;
  assert.deepEqual(await writer.write(rowsOf([other], 400)), { rejected: [] });
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

test('failed executions of WF-003 in the last hour: exactly the failures that ended in the window, newest first, once each', async () => {
  const lastHour = await failedExecutions(client, database, { workflowId: 'WF-003', sinceSeconds: 3600, limit: 100 });
  assert.deepEqual(lastHour.map((r) => r.execution_id), [idOf(A), idOf(B)]);
  const a = lastHour[0]!;
  assert.equal(a.status, 'failed');
  assert.equal(a.error_type, 'TimeoutError');
  const started = A[0]!.event_time;
  assert.equal(Date.parse(`${a.start_time}Z`), started, 'start time = end time - duration');
  assert.ok(a.duration_ms > 0);

  const threeHours = await failedExecutions(client, database, { workflowId: 'WF-003', sinceSeconds: 3 * 3600, limit: 100 });
  assert.deepEqual(threeHours.map((r) => r.execution_id), [idOf(A), idOf(B), idOf(C)]);
  // A failed twice (failed); C failed and, in another result, succeeded: listed for its failure, flagged conflicting.
  assert.deepEqual(threeHours.map((r) => r.outcome), ['failed', 'failed', 'conflicting']);
  assert.deepEqual((await failedExecutions(client, database, { workflowId: 'WF-004', sinceSeconds: 3600, limit: 100 })).map((r) => r.execution_id), [idOf(F)]);
  assert.deepEqual(await failedExecutions(client, database, { workflowId: 'WF-003', sinceSeconds: 3600, limit: 1 }).then((r) => r.length), 1);
});

test('inputs of an execution: its input, then every step attempt in order, tokenized as stored; a running one says so', async () => {
  const inputs = await executionInputs(client, database, idOf(A));
  assert.deepEqual(
    inputs.map((r) => [r.source, r.step_id, r.step_name, r.attempt, r.status]),
    [
      ['execution', 0, '', 0, 'failed'],
      ['step', 1, 'validate', 1, 'success'],
      ['step', 2, 'charge', 1, 'failed'],
      ['step', 2, 'charge', 2, 'failed'],
    ],
  );
  assert.match(inputs[0]!.input, /"customer_email":\{"token":"tok_/);
  assert.equal(inputs[2]!.input, JSON.stringify({ step: 'charge', attempt: 1 }));

  const running = await executionInputs(client, database, idOf(E));
  assert.deepEqual(running.map((r) => [r.source, r.status]), [['execution', 'running'], ['step', 'success']]);
});

test('decision path: every decision across steps, in the order taken, with its step', async () => {
  const path = await decisionPath(client, database, idOf(A));
  assert.deepEqual(
    path.map((d) => [d.step_id, d.step_name, d.branch_condition, d.branch_taken, d.branch_reason]),
    [
      [1, 'validate', 'amount > 10000', 'manual-approval', 'amount exceeds 10000'],
      [2, 'charge', 'attempts < 3', 'give-up', 'charge failed twice'],
    ],
  );
  assert.ok(path[0]!.sequence < path[1]!.sequence);
  assert.deepEqual(await decisionPath(client, database, idOf(B)), []);
  assert.equal(await executionKnown(client, database, idOf(B)), true);
  assert.equal(await executionKnown(client, database, '00000000-0000-4000-8000-000000000000'), false);
});

test('rows ClickHouse refuses are isolated to their event; the rest of the batch is stored', async () => {
  const good = buildExecution({ workflowId: 'WF-REJ', status: 'failed', startedAgoMs: MIN, steps: [{ name: 'a', status: 'failed' }] });
  const rows = rowsOf(good, 500);
  // A lone UTF-16 surrogate cannot come out of Avro, but it is a real refusal: CANNOT_PARSE_ESCAPE_SEQUENCE.
  const bad = structuredClone(rows[1]!);
  bad.eventId = 'bad-event';
  bad.event.event_id = 'bad-event';
  if (bad.detail.table !== 'steps') throw new Error('fixture: expected a step');
  bad.detail.row = { ...bad.detail.row, event_id: 'bad-event', step_name: 'step \ud800' };
  const result = await writer.write([...rows, bad]);
  assert.deepEqual(result.rejected.map((r) => r.index), [rows.length]);
  assert.match(result.rejected[0]!.reason, /^ClickHouse refused the rows of event bad-event: CANNOT_PARSE_ESCAPE_SEQUENCE \(code 25\)$/);
  assert.equal((await executionInputs(client, database, idOf(good))).length, 2);
  const leftovers = await (await client.query({ query: `SELECT count() AS n FROM ${database}.events WHERE event_id = 'bad-event'`, format: 'JSONEachRow' })).json<{ n: number }>();
  assert.equal(Number(leftovers[0]!.n), 0, 'no provenance row for the refused event');
});

test('a batch writes steps before the decisions and outcomes that refer to them, provenance last (a decision was queryable before its step)', async () => {
  // Many more step rows than decision rows: written in parallel, the decisions would be acknowledged (and stamped) first.
  const batch = Array.from({ length: 400 }, () =>
    buildExecution({
      workflowId: 'WF-ORD',
      status: 'failed',
      startedAgoMs: MIN,
      steps: Array.from({ length: 25 }, (_, i) => ({ name: `step-${i + 1}`, status: i === 24 ? ('failed' as const) : ('success' as const) })),
      decisions: [{ step: 25, condition: 'retries > 3', taken: 'give-up', reason: 'too many retries' }],
    }),
  ).flat();
  assert.deepEqual(await writer.write(rowsOf(batch, 1_000)), { rejected: [] });
  // ingested_at is the server's now64(3) when it took each insert's rows.
  const span = async (table: string) => {
    const rs = await client.query({
      query: `SELECT min(ingested_at) AS first, max(ingested_at) AS last, count() AS n FROM ${database}.${table} WHERE workflow_id = 'WF-ORD'`,
      format: 'JSONEachRow',
    });
    const r = (await rs.json<{ first: string; last: string; n: string }>())[0]!;
    return { first: Date.parse(`${r.first}Z`), last: Date.parse(`${r.last}Z`), n: Number(r.n) };
  };
  const [executions, steps, decisions, results, events] = [await span('executions'), await span('steps'), await span('decisions'), await span('execution_results'), await span('events')];
  assert.deepEqual([executions.n, steps.n, decisions.n, results.n, events.n], [400, 10_000, 400, 400, batch.length]);
  for (const [name, later] of Object.entries({ decisions, execution_results: results })) {
    assert.ok(later.first >= steps.last, `${name} stamped ${later.first - steps.last} ms after the last step`);
    assert.ok(later.first >= executions.last, `${name} stamped after the executions`);
  }
  assert.ok(events.first >= Math.max(decisions.last, results.last), 'events after every detail table');
});

const cli = assetPath('dist', 'cli', 'main.js');
async function auditline(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [cli, ...args], { env: { ...process.env, AUDITLINE_CLICKHOUSE_DATABASE: database } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

test('`auditline query`: json, csv and table output; documented exit codes for no match, unknown execution and --reveal without --role/--reason', async () => {
  const json = await auditline('query', 'failed', '--workflow', 'WF-003', '--since', '1h', '--format', 'json');
  assert.equal(json.code, 0, json.stderr);
  const failed = JSON.parse(json.stdout) as { execution_id: string; outcome: string; start_time: string; end_time: string }[];
  assert.deepEqual(failed.map((r) => r.execution_id), [idOf(A), idOf(B)]);
  assert.deepEqual(failed.map((r) => r.outcome), ['failed', 'failed']);
  // Times say they are UTC: a reader parses the same instant on any machine.
  assert.match(failed[0]!.end_time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  assert.equal(Date.parse(failed[0]!.start_time), A[0]!.event_time);

  const csv = await auditline('query', 'decisions', idOf(A), '--format', 'csv');
  assert.equal(csv.code, 0, csv.stderr);
  const lines = csv.stdout.trimEnd().split('\r\n');
  assert.equal(lines[0], 'step_id,step_name,branch_condition,branch_taken,branch_reason,condition_values,sequence,decided_at');
  assert.match(lines[1]!, /^1,validate,amount > 10000,manual-approval,amount exceeds 10000,"\{""amount"":12000\}",\d+,/);
  assert.equal(lines.length, 3);

  const table = await auditline('query', 'inputs', idOf(E));
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^SOURCE\s+STEP_ID\s+STEP_NAME\s+ATTEMPT\s+STATUS/);
  assert.match(table.stdout, /\nexecution\s+0\s+0\s+running/);

  const none = await auditline('query', 'failed', '--workflow', 'WF-999', '--since', '1h');
  assert.equal(none.code, 4);
  assert.match(none.stderr, /no failed executions of WF-999 ended in the last 1h/);
  const noDecisions = await auditline('query', 'decisions', idOf(B));
  assert.equal(noDecisions.code, 4);
  assert.match(noDecisions.stderr, /has no recorded decisions/);
  const unknown = await auditline('query', 'inputs', '00000000-0000-4000-8000-000000000000');
  assert.equal(unknown.code, 5);
  assert.match(unknown.stderr, /is not in the hot store/);
  const reveal = await auditline('query', 'inputs', idOf(A), '--reveal');
  assert.equal(reveal.code, 2);
  assert.match(reveal.stderr, /--reveal needs --role and --reason/);
  assert.equal(reveal.stdout, '');
  const badSince = await auditline('query', 'failed', '--workflow', 'WF-003', '--since', 'yesterday');
  assert.equal(badSince.code, 2);
  assert.match(badSince.stderr, /--since "yesterday"/);
});

test('a batch whose events span more than 100 months (a backfill) is written in one go, not retried forever', async () => {
  const DAY = 86_400_000;
  const old = Array.from({ length: 110 }, (_, i) => buildExecution({ workflowId: 'WF-BACKFILL', status: 'success', startedAgoMs: (i + 1) * 31 * DAY, now, steps: [{ name: 'a', status: 'success' }] }));
  assert.deepEqual(await writer.write(rowsOf(old.flat(), 10_000)), { rejected: [] });
});

// Table output wrote producer text to the terminal as it was: an error message with escape sequences or a carriage
// return could clear the screen, rewrite a row or hide the failure from whoever ran `query failed`.
test('`auditline query --format table` writes control characters of producer text escaped, never to the terminal', async () => {
  const G = buildExecution({ workflowId: 'WF-ESC', status: 'failed', startedAgoMs: 2 * MIN, steps: [{ name: 'fetch', status: 'failed' }] });
  const finished = unwrapPayload(G[G.length - 1]!.payload);
  assert.equal(finished.kind, 'ExecutionFinished');
  (finished.value as ExecutionFinished).error!.message = 'boom\u001b[2J\u001b[H\rall good\u0007 \u202eevil';
  assert.deepEqual(await writer.write(rowsOf(G, 400)), { rejected: [] });
  const table = await auditline('query', 'failed', '--workflow', 'WF-ESC', '--since', '1h');
  assert.equal(table.code, 0, table.stderr);
  assert.doesNotMatch(table.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/, JSON.stringify(table.stdout));
  assert.ok(table.stdout.includes('boom\\x1b[2J\\x1b[H\\x0dall good\\x07 \\u202eevil'), JSON.stringify(table.stdout));
  // JSON and CSV carry the value exactly (they are for programs).
  const json = await auditline('query', 'failed', '--workflow', 'WF-ESC', '--since', '1h', '--format', 'json');
  assert.equal((JSON.parse(json.stdout) as { error_message: string }[])[0]!.error_message, 'boom\u001b[2J\u001b[H\rall good\u0007 \u202eevil');
});
