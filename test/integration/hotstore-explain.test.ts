import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { HOTSTORE_SQL } from '../../consumers/hotstore/queries.js';
import { SUBJECT_EXECUTIONS_SQL } from '../../compliance/reports/kinds.js';
import { clickhouse, createHotstoreDatabase, parseExplain, type ExplainedRead } from '../helpers/hotstore-stack.js';

const client = clickhouse();
let database: string;

/** Execution number k has id md5(k) in hex and belongs to WF-<k % 50>; 100k executions over 60 days. */
const idOf = (k: number) => `lower(hex(MD5(toString(${k}))))`;
const TARGET = 4242;
let targetId: string;

before(async () => {
  database = await createHotstoreDatabase(client, 'it_hs_explain');
  const db = database;
  const id = idOf(0).replace('0', 'k');
  const wf = `concat('WF-', leftPad(toString(k % 50), 3, '0'))`;
  const start = `now64(3) - toIntervalSecond((k * 7919) % (86400 * 60))`;
  const seed = [
    `INSERT INTO ${db}.executions (execution_id, workflow_id, workflow_name, workflow_version, trigger, triggered_by_kind, triggered_by_id, start_time, parent_execution_id, correlation_id, input, input_truncated, input_original_size_bytes, input_sha256, event_id, event_time, sequence)
     SELECT ${id}, ${wf}, 'bulk', '1', 'api', 'service', 'svc', ${start} AS t, '', '', '{"amount":1}', false, 0, '', concat(${id}, '-1'), t, 1 FROM (SELECT number AS k FROM numbers(100000))`,
    `INSERT INTO ${db}.execution_results (execution_id, workflow_id, status, end_time, duration_ms, output, error_type, error_message, event_id, event_time, sequence)
     SELECT ${id}, ${wf}, if(k % 5 = 0, 'failed', 'success'), ${start} + toIntervalSecond(30) AS t, 30000, '', '', '', concat(${id}, '-9'), t, 9 FROM (SELECT number AS k FROM numbers(100000))`,
    `INSERT INTO ${db}.steps (execution_id, workflow_id, step_id, step_name, attempt, status, start_time, end_time, duration_ms, input_data, output_data, data_truncated, data_original_size_bytes, data_sha256, error_type, error_message, event_id, event_time, sequence)
     SELECT ${id}, ${wf}, s, concat('step-', toString(s)), 1, 'success', ${start} AS t, t, 1, '{}', '{}', false, 0, '', '', '', concat(${id}, '-s', toString(s)), t, s + 1
     FROM (SELECT intDiv(number, 3) AS k, number % 3 + 1 AS s FROM numbers(300000))`,
    `INSERT INTO ${db}.decisions (execution_id, workflow_id, sequence, step_id, branch_condition, branch_taken, branch_reason, condition_values, event_id, event_time)
     SELECT ${id}, ${wf}, s + 5, s, 'x > 1', 'yes', 'because', '{}', concat(${id}, '-d', toString(s)), ${start}
     FROM (SELECT intDiv(number, 2) AS k, number % 2 + 1 AS s FROM numbers(200000))`,
    `INSERT INTO ${db}.events (execution_id, sequence, event_id, event_time, workflow_id, kind, correlation_id, schema_version, producer_service, producer_host, producer_client_version, producer_instance_id, source_topic, source_partition, source_offset)
     SELECT ${id}, s, concat(${id}, '-e', toString(s)), ${start}, ${wf}, 'StepFinished', '', 1, 'bulk', 'h', '0.1.0', 'i', 'audit.events', 0, number
     FROM (SELECT number, intDiv(number, 5) AS k, number % 5 + 1 AS s FROM numbers(500000))`,
    `INSERT INTO ${db}.execution_subjects (execution_id, subject, created_at)
     SELECT ${id}, concat('subject-', toString(k)), now64(3) FROM (SELECT number AS k FROM numbers(100000))`,
  ];
  for (const query of seed) await client.command({ query });
  const rs = await client.query({ query: `SELECT ${idOf(TARGET)} AS id`, format: 'JSONEachRow' });
  targetId = (await rs.json<{ id: string }>())[0]!.id;
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

async function explain(sql: string, params: Record<string, unknown>): Promise<ExplainedRead[]> {
  const rs = await client.query({ query: `EXPLAIN indexes = 1 ${sql}`, query_params: params, format: 'TabSeparatedRaw' });
  return parseExplain(await rs.text());
}

function readOf(reads: ExplainedRead[], table: string): ExplainedRead {
  const read = reads.find((r) => r.table === `${database}.${table}`);
  assert.ok(read, `EXPLAIN shows a read of ${table}: ${reads.map((r) => r.table).join(', ')}`);
  return read;
}

/**
 * The index prunes: it drops granules itself, and what is left to read is
 * under a quarter of the table (the first index section, Min-Max, sees
 * every granule of the table before any pruning).
 */
function assertPrunes(read: ExplainedRead, kind: 'PrimaryKey' | 'Skip', expect: { keys?: string[]; name?: string }): void {
  const index = read.indexes.find((i) => i.kind === kind && (expect.name === undefined || i.name === expect.name));
  assert.ok(index, `${read.table}: EXPLAIN lists a ${kind} index${expect.name ? ` ${expect.name}` : ''}`);
  if (expect.keys) assert.deepEqual(index.keys.slice(0, expect.keys.length), expect.keys, `${read.table}: ${kind} keys`);
  const table = read.indexes[0]!.totalGranules;
  assert.ok(table >= 12, `${read.table}: enough data to judge (${table} granules)`);
  // Partition and Min-Max pruning run first: in the first days of a month the current partition can be down to one
  // granule before the primary key is consulted (it failed so on 2026-12-07); then there is nothing left for it to drop.
  if (index.totalGranules > 1) assert.ok(index.selectedGranules < index.totalGranules, `${read.table}: ${kind} drops granules (${index.selectedGranules}/${index.totalGranules})`);
  assert.ok(index.selectedGranules * 4 <= table, `${read.table}: ${kind} leaves ${index.selectedGranules} of the table's ${table} granules`);
}

test('failed executions of a workflow in the last hour: one primary key range on (workflow_id, status, end_time)', async () => {
  const reads = await explain(HOTSTORE_SQL.failed(database), { workflow_id: 'WF-003', since_seconds: 3600, limit: 100 });
  const read = readOf(reads, 'execution_results');
  assertPrunes(read, 'PrimaryKey', { keys: ['workflow_id', 'status', 'end_time'] });
  const pk = read.indexes.find((i) => i.kind === 'PrimaryKey')!;
  for (const column of ['workflow_id', 'status', 'end_time']) assert.match(pk.condition ?? '', new RegExp(column), `condition uses ${column}`);
});

/**
 * A table keyed by execution_id: the primary key leaves one granule in EVERY
 * part (the id lies between two marks of each), then the bloom filter drops
 * the parts that do not hold the execution (migration 0014), so what is read
 * is the granules that hold it (the filter's 1 % false positives may add one).
 */
async function assertKeyThenBloom(read: ExplainedRead, table: string): Promise<void> {
  assertPrunes(read, 'PrimaryKey', { keys: ['execution_id'] });
  const pk = read.indexes.find((i) => i.kind === 'PrimaryKey')!;
  const skip = read.indexes.find((i) => i.kind === 'Skip' && i.name === 'idx_execution_id');
  assert.ok(skip, `${table}: EXPLAIN lists the skip index idx_execution_id after the primary key`);
  const rs = await client.query({
    query: `SELECT uniqExact(_part) AS parts, (SELECT count() FROM system.parts WHERE database = {db:String} AND table = {t:String} AND active) AS all_parts FROM ${database}.${table} WHERE execution_id = {id:String}`,
    query_params: { db: database, t: table, id: targetId },
    format: 'JSONEachRow',
  });
  const { parts, all_parts } = (await rs.json<{ parts: number; all_parts: number }>())[0]!;
  assert.ok(Number(all_parts) > Number(parts), `${table}: the data spans more parts (${all_parts}) than the execution (${parts})`);
  assert.equal(pk.selectedGranules, Number(all_parts), `${table}: the primary key keeps one granule per part`);
  assert.ok(skip.selectedGranules < pk.selectedGranules, `${table}: the bloom filter drops parts (${skip.selectedGranules}/${pk.selectedGranules})`);
  assert.ok(skip.selectedGranules <= Number(parts) + 1, `${table}: ${skip.selectedGranules} granules read for an execution in ${parts} part(s)`);
}

test('inputs of an execution: the bloom filter on executions.execution_id, the primary key and bloom filter of steps', async () => {
  const reads = await explain(HOTSTORE_SQL.inputs(database), { execution_id: targetId });
  assertPrunes(readOf(reads, 'executions'), 'Skip', { name: 'idx_execution_id' });
  await assertKeyThenBloom(readOf(reads, 'steps'), 'steps');
});

test('decision path of an execution: the primary keys and bloom filters of decisions and steps', async () => {
  const reads = await explain(HOTSTORE_SQL.decisions(database), { execution_id: targetId });
  await assertKeyThenBloom(readOf(reads, 'decisions'), 'decisions');
  await assertKeyThenBloom(readOf(reads, 'steps'), 'steps');
  const rs = await client.query({ query: HOTSTORE_SQL.decisions(database), query_params: { execution_id: targetId }, format: 'JSONEachRow' });
  assert.deepEqual((await rs.json<{ step_id: number; step_name: string }>()).map((r) => [r.step_id, r.step_name]), [[1, 'step-1'], [2, 'step-2']]);
});

test('"is the execution known": the primary key and bloom filter of events', async () => {
  const reads = await explain(HOTSTORE_SQL.known(database), { execution_id: targetId });
  await assertKeyThenBloom(readOf(reads, 'events'), 'events');
});

test('executions of a data subject (report --subject): the bloom filter on subject skips the other subjects\' granules', async () => {
  const reads = await explain(SUBJECT_EXECUTIONS_SQL(database), { subjects: ['subject-4242'] });
  assertPrunes(readOf(reads, 'execution_subjects'), 'Skip', { name: 'idx_subject' });
});
