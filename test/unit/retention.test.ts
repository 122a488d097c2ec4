import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseTopicPrefix } from '../../cli/commands/retention.js';
import { UsageError } from '../../cli/exit.js';
import { isAuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { auditTopics, TOPICS } from '../../infra/kafka/topics.js';
import { DEFAULT_RETENTION_FILE, loadRetention, retentionDaysFor } from '../../infra/retention.js';
import { lifecycleRules } from '../../infra/s3/bootstrap.js';
import { migrationVariables } from '../../infra/setup.js';

const HOUR = 3_600_000;

function withFile(text: string): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'retention-')), 'retention.yaml');
  writeFileSync(file, text);
  return file;
}

test('the shipped settings hold the requirements table of the design', () => {
  const r = loadRetention();
  assert.deepEqual(
    Object.entries(r.requirements).map(([k, v]) => [k, v.source, v.retention_days, v.access]),
    [
      ['sox', 'Finance', 2557, 'restricted'],
      ['gdpr', 'Legal', 30, 'restricted'],
      ['operational', 'Engineering', 90, 'open'],
    ],
  );
  assert.equal(retentionDaysFor(r, 'pii'), 30);
  assert.equal(retentionDaysFor(r, 'sox'), 2557);
  assert.equal(retentionDaysFor(r, 'internal'), 90);
});

test('topic retention, TTL variables and lifecycle rules are derived from the file', () => {
  const original = readFileSync(DEFAULT_RETENTION_FILE, 'utf8');
  const changed = original.replace('retention_hours: 24', 'retention_hours: 6').replace('retention_days: 2557', 'retention_days: 3000').replace('retention_days: 30\n', 'retention_days: 14\n');
  for (const [text, rawHours, soxDays, gdprDays] of [[original, 24, 2557, 30], [changed, 6, 3000, 14]] as const) {
    const r = loadRetention(withFile(text));
    const topics = new Map(auditTopics(r).map((t) => [t.name, t]));
    assert.equal(topics.get(TOPICS.raw)!.config['retention.ms'], String(rawHours * HOUR));
    assert.equal(topics.get(TOPICS.events)!.config['retention.ms'], String(168 * HOUR));
    assert.equal(topics.get(TOPICS.dlq)!.config['retention.ms'], String(gdprDays * 24 * HOUR), 'DLQ follows GDPR');
    assert.equal(migrationVariables(r).ttl_days_sox, soxDays);
    assert.equal(migrationVariables(r).ttl_days_pii, gdprDays);
    assert.ok(lifecycleRules(r).every((rule) => rule.Expiration?.Days === soxDays + 1));
  }
});

test('topic layout: prefix, partitions and min ISR follow the replication factor', () => {
  const r = loadRetention();
  const specs = auditTopics(r, { partitions: 12, dlqPartitions: 2, replicationFactor: 3, prefix: 't1.' });
  assert.deepEqual(specs.map((s) => [s.name, s.partitions, s.replicationFactor, s.config['min.insync.replicas']]), [
    ['t1.audit.raw', 12, 3, '2'],
    ['t1.audit.events', 12, 3, '2'],
    ['t1.audit.dlq', 2, 3, '2'],
    ['t1.audit.alerts.signals', 12, 3, '2'],
    ['t1.audit.alerts.outbox', 12, 3, '2'],
  ]);
  assert.ok(specs.every((s) => s.config['cleanup.policy'] === 'delete'));
});

test('bad retention settings are refused naming the key', () => {
  const cases: [string, RegExp][] = [
    ['requirements: {}\ndata_classes: {pii: gdpr, sox: sox, internal: operational}\ntopics: {}\n', /data_classes.pii names unknown requirement "gdpr"/],
    [readFileSync(DEFAULT_RETENTION_FILE, 'utf8').replace('retention_days: 90', 'retention_days: -1'), /requirements.operational.retention_days/],
    [readFileSync(DEFAULT_RETENTION_FILE, 'utf8').replace('retention_from: gdpr', 'retention_from: nope'), /topics.audit.dlq.retention_from names unknown requirement "nope"/],
    [readFileSync(DEFAULT_RETENTION_FILE, 'utf8') + 'surprise: 1\n', /Unrecognized key.*surprise/],
    // An access value the code does not enforce is refused, not printed as if it were a control.
    [readFileSync(DEFAULT_RETENTION_FILE, 'utf8').replace(/(gdpr:[\s\S]*?access: )restricted/, '$1open'), /requirements.gdpr.access: data class pii is restricted in Auditline .*"open" is not enforced anywhere/],
    [readFileSync(DEFAULT_RETENTION_FILE, 'utf8').replace(/(sox:[\s\S]*?access: )restricted/, '$1open'), /requirements.sox.access: data class sox is restricted/],
    [readFileSync(DEFAULT_RETENTION_FILE, 'utf8').replace(/(operational:[\s\S]*?access: )open/, '$1restricted'), /requirements.operational.access: data class internal is open/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => loadRetention(withFile(text)), (e) => isAuditlineError(e, 'RETENTION_INVALID') && message.test(e.message), String(message));
  }
  assert.throws(() => loadRetention('/nonexistent/retention.yaml'), (e) => isAuditlineError(e, 'RETENTION_INVALID') && /cannot read/.test(e.message));
});

test('retention plan --topic-prefix: a prefix no Kafka topic name can hold is wrong usage, not every topic missing', (t) => {
  const topics = Object.keys(loadRetention().topicRetentionMs);
  assert.equal(parseTopicPrefix('', topics), '');
  assert.equal(parseTopicPrefix('team-a.v2_', topics), 'team-a.v2_');
  const longest = Math.max(...topics.map((n) => n.length));
  assert.equal(parseTopicPrefix('p'.repeat(249 - longest), topics).length, 249 - longest);
  for (const bad of ['bad prefix!', 'a/b', 'é', 'p'.repeat(250 - longest)]) {
    assert.throws(() => parseTopicPrefix(bad, topics), (e) => e instanceof UsageError && /^--topic-prefix/.test(e.message), bad);
  }

  // The command refuses it (exit 2) before Kafka, ClickHouse or S3 is asked: nothing listens on these ports.
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-prefix-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  const ports = { AUDITLINE_STACK_KAFKA_PORT: '1', AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '2', AUDITLINE_STACK_REGISTRY_PORT: '3', AUDITLINE_STACK_CLICKHOUSE_PORT: '4', AUDITLINE_STACK_S3_PORT: '5' };
  const env = { ...process.env, ...ports, AUDITLINE_STACK_DIR: stackDir, AUDITLINE_CACHE_DIR: path.join(stackDir, 'cache') };
  const r = spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'retention', 'plan', '--topic-prefix', 'bad prefix!'], { encoding: 'utf8', env });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /^auditline: --topic-prefix "bad prefix!": a Kafka topic name holds only A-Z a-z 0-9 \. _ -/);
});
