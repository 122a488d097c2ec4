import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DeleteBucketCommand } from '@aws-sdk/client-s3';
import kafkajs from 'kafkajs';
import { createS3 } from '../../core/clients/s3.js';
import { applyTopics, auditTopics, DEFAULT_LAYOUT } from '../../infra/kafka/topics.js';
import { DEFAULT_MIGRATIONS_DIR } from '../../infra/clickhouse/migrate.js';
import { syncTtls } from '../../infra/clickhouse/ttl.js';
import { loadRetention } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { bootstrapBucket } from '../../infra/s3/bootstrap.js';
import type { EnforcementRow, RetentionPlan } from '../../compliance/index.js';
import { uniqueName } from '../helpers/names.js';
import { clickhouse, createTokenizerDatabase, endpoints, kafka, runCli } from '../helpers/tokenizer-stack.js';

// The S3 SDK warns on Node 20 about releases after January 2027 (docs/compatibility.md).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const client = clickhouse();
const s3 = createS3(endpoints.s3);
const retention = loadRetention();
const prefix = `${uniqueName('it-rp')}.`;
const bucket = uniqueName('it-rp');
const layout = { ...DEFAULT_LAYOUT, partitions: 1, prefix };
let database: string;
let env: Record<string, string>;

before(async () => {
  database = await createTokenizerDatabase(client);
  const admin = kafka.admin();
  await admin.connect();
  await applyTopics(admin, auditTopics(retention, layout)).finally(() => admin.disconnect());
  await bootstrapBucket(s3, { bucket, retention });
  env = { AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_S3_BUCKET: bucket };
});

after(async () => {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteTopics({ topics: auditTopics(retention, layout).map((t) => t.name) }).catch(() => undefined);
  await admin.disconnect();
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  s3.destroy();
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

async function plan(): Promise<{ code: number | null; plan: RetentionPlan; stderr: string }> {
  const r = await runCli(['retention', 'plan', '--topic-prefix', prefix, '--format', 'json'], env);
  return { code: r.code, plan: JSON.parse(r.stdout) as RetentionPlan, stderr: r.stderr };
}

test('retention plan reads every store back, matches the settings, then flags a TTL changed by hand', { timeout: 90_000 }, async () => {
  const before = await plan();
  assert.equal(before.code, 0, `${before.stderr}\n${JSON.stringify(before.plan.enforcement.filter((r) => r.status !== 'ok'), null, 1)}`);
  assert.deepEqual(before.plan.requirements.map((r) => [r.requirement, r.source, r.retention_days, r.access]), [
    ['sox', 'Finance', 2557, 'restricted'],
    ['gdpr', 'Legal', 30, 'restricted'],
    ['operational', 'Engineering', 90, 'open'],
  ]);
  const by = (store: string) => before.plan.enforcement.filter((r) => r.store === store);
  // The requirement column names where the value comes from: the hours of `topics:`, or the requirement of retention_from.
  assert.deepEqual(by('kafka').map((r) => [r.object, r.requirement, r.actual]), [
    [`topic ${prefix}audit.raw`, 'topics.audit.raw.retention_hours', String(24 * 3_600_000)],
    [`topic ${prefix}audit.events`, 'topics.audit.events.retention_hours', String(168 * 3_600_000)],
    [`topic ${prefix}audit.dlq`, 'gdpr (topics.audit.dlq.retention_from)', String(30 * 86_400_000)],
    [`topic ${prefix}audit.alerts.signals`, 'topics.audit.alerts.signals.retention_hours', String(24 * 3_600_000)],
    [`topic ${prefix}audit.alerts.outbox`, 'topics.audit.alerts.outbox.retention_hours', String(168 * 3_600_000)],
  ]);
  const executionsTtl = by('clickhouse').find((r) => r.object === `${database}.executions` && r.enforced_by === 'table TTL')!;
  assert.deepEqual([executionsTtl.expected, executionsTtl.actual, executionsTtl.status], ['90 days', '90 days', 'ok']);
  assert.ok(by('clickhouse').some((r) => r.object === `${database}.report_requests` && r.actual === '2557 days'), 'the report tables keep the SOX retention');
  assert.deepEqual(by('s3').map((r) => r.status), ['ok', 'ok', 'ok', 'ok'], 'Object Lock, and the lifecycle rules of events/, digests/ and access-log/');
  assert.equal(by('s3')[0]!.actual, 'COMPLIANCE 2557 days');
  assert.equal(by('keys')[0]!.status, 'ok');

  await client.command({ query: `ALTER TABLE ${database}.executions MODIFY TTL toDateTime(event_time) + INTERVAL 5 DAY` });
  const afterChange = await plan();
  assert.equal(afterChange.code, 8, afterChange.stderr);
  const differing = afterChange.plan.enforcement.filter((r) => r.status !== 'ok');
  assert.deepEqual(differing, [
    { store: 'clickhouse', object: `${database}.executions`, enforced_by: 'table TTL', requirement: 'operational (data class internal)', expected: '90 days', actual: '5 days', status: 'DIFFERS' } satisfies EnforcementRow,
  ]);
  assert.equal(afterChange.plan.differences, 1);
  assert.match(afterChange.stderr, /1 enforced value\(s\) differ/);
});

test('S3 unreachable is a failure of the check (exit 1), not a difference; a bucket that does not exist is one (exit 8)', { timeout: 90_000 }, async () => {
  // Setting one endpoint switches the local defaults off: the others are given as the local stack has them.
  const local = {
    AUDITLINE_KAFKA_BROKERS: endpoints.kafka.brokers.join(','),
    AUDITLINE_CLICKHOUSE_URL: endpoints.clickhouse.url,
    AUDITLINE_S3_ACCESS_KEY_ID: endpoints.s3.credentials!.accessKeyId,
    AUDITLINE_S3_SECRET_ACCESS_KEY: endpoints.s3.credentials!.secretAccessKey,
  };
  const down = await runCli(['retention', 'plan', '--topic-prefix', prefix, '--format', 'json'], { ...env, ...local, AUDITLINE_S3_ENDPOINT: 'http://127.0.0.1:1' });
  assert.equal(down.code, 1, down.stderr);
  assert.match(down.stderr, /S3_UNAVAILABLE/);
  const missing = await runCli(['retention', 'plan', '--topic-prefix', prefix, '--format', 'json'], { ...env, AUDITLINE_S3_BUCKET: uniqueName('it-rp-none') });
  assert.equal(missing.code, 8, missing.stderr);
  const rows = (JSON.parse(missing.stdout) as RetentionPlan).enforcement.filter((r) => r.store === 's3');
  assert.deepEqual(rows.map((r) => r.status), ['MISSING']);
});

// retention.ms deletes nothing on a topic whose cleanup.policy lacks `delete` (compaction keeps each key's latest record
// for ever): the plan compared retention.ms alone and said ok for an audit.raw that keeps cleartext PII indefinitely.
test('retention plan flags a topic whose cleanup.policy does not delete by age, though its retention.ms matches', { timeout: 90_000 }, async () => {
  const raw = auditTopics(retention, layout).find((t) => t.name === `${prefix}audit.raw`)!;
  const admin = kafka.admin();
  await admin.connect();
  try {
    // alterConfigs replaces the topic's dynamic configs: restate them all, with compaction instead of deletion.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: raw.name, configEntries: Object.entries({ ...raw.config, 'cleanup.policy': 'compact' }).map(([name, value]) => ({ name, value })) }],
    });
  } finally {
    await admin.disconnect();
  }
  const r = await plan();
  assert.equal(r.code, 8, r.stderr);
  const row = r.plan.enforcement.find((x) => x.object === `topic ${raw.name}`)!;
  assert.equal(row.status, 'DIFFERS', JSON.stringify(row));
  assert.match(row.actual, /^86400000 \(cleanup\.policy compact: nothing is deleted by age\)$/);
  assert.deepEqual(r.plan.enforcement.filter((x) => x.store === 'kafka' && x.status !== 'ok').map((x) => x.object), [`topic ${raw.name}`]);
});

// The plan read the days of a table TTL and nothing else: a TTL that deletes only some rows (`DELETE WHERE`) or moves
// them instead of deleting them (`TO DISK`) read as "90 days, ok" while rows outlived the retention.
test('retention plan flags a table TTL that does not delete every row at its age (WHERE, TO DISK)', { timeout: 90_000 }, async () => {
  await client.command({ query: `ALTER TABLE ${database}.execution_results MODIFY TTL toDateTime(event_time) + INTERVAL 90 DAY DELETE WHERE workflow_id = 'none'` });
  await client.command({ query: `ALTER TABLE ${database}.steps MODIFY TTL toDateTime(event_time) + INTERVAL 90 DAY TO DISK 'default'` });
  const r = await plan();
  assert.equal(r.code, 8, r.stderr);
  const row = (table: string) => r.plan.enforcement.find((x) => x.object === `${database}.${table}` && x.enforced_by === 'table TTL')!;
  assert.deepEqual([row('execution_results').status, row('execution_results').actual], ['DIFFERS', "90 days, then WHERE workflow_id = 'none' (not a deletion of every row)"]);
  assert.deepEqual([row('steps').status, row('steps').actual], ['DIFFERS', "90 days, then TO DISK 'default' (not a deletion of every row)"]);
  assert.equal(row('decisions').status, 'ok');

  // `setup` (syncTtls) restates such a TTL as the migrations declare it, though its days are the settings'.
  const changed = await syncTtls(client, { database, dir: DEFAULT_MIGRATIONS_DIR, variables: migrationVariables(retention) });
  assert.ok(changed.includes('execution_results') && changed.includes('steps'), changed.join(', '));
  const again = await plan();
  const rowAgain = (table: string) => again.plan.enforcement.find((x) => x.object === `${database}.${table}` && x.enforced_by === 'table TTL')!;
  assert.deepEqual([rowAgain('execution_results').status, rowAgain('steps').status], ['ok', 'ok']);
});
