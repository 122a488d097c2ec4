import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isAuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { aclCommands, auditAcls, DEFAULT_ACL_NAMES, defaultPrincipals, parsePrincipals } from '../../infra/kafka/acls.js';

const rules = auditAcls(defaultPrincipals());
const who = (topic: string, operation: string) => [...new Set(rules.filter((r) => r.resource === 'topic' && r.name === topic && r.operation === operation).map((r) => r.role))].sort();

test('Kafka ACL spec: only the tokenizer reads audit.raw; only the tokenizer (and operators redriving) write audit.events; only operators read audit.dlq', () => {
  const t = DEFAULT_ACL_NAMES.topics;
  assert.deepEqual(who(t.raw, 'READ'), ['tokenizer']);
  assert.deepEqual(who(t.raw, 'WRITE'), ['operator', 'producer']);
  assert.deepEqual(who(t.events, 'WRITE'), ['operator', 'tokenizer']);
  assert.deepEqual(who(t.events, 'READ'), ['alerts', 'archiver', 'hotstore']);
  assert.deepEqual(who(t.dlq, 'READ'), ['operator']);
  assert.deepEqual(who(t.dlq, 'WRITE'), ['alerts', 'archiver', 'hotstore', 'tokenizer']);
  assert.deepEqual(who(t.alertSignals, 'READ'), ['alerts']);
  assert.deepEqual(who(t.alertOutbox, 'WRITE'), ['alerts', 'operator'], 'alerts dead letters (failed deliveries) are redriven to the outbox');
  // Every READ or WRITE on a topic comes with DESCRIBE (metadata and offsets), and no rule is listed twice.
  for (const r of rules.filter((x) => x.operation !== 'DESCRIBE' && x.operation !== 'DELETE')) {
    assert.ok(rules.some((d) => d.principal === r.principal && d.resource === r.resource && d.name === r.name && d.pattern === r.pattern && d.operation === 'DESCRIBE'), `${r.role} ${r.operation} ${r.name} without DESCRIBE`);
  }
  assert.equal(new Set(rules.map((r) => JSON.stringify(r))).size, rules.length);
  const txn = rules.filter((r) => r.resource === 'transactional-id');
  assert.deepEqual([...new Set(txn.map((r) => `${r.role}:${r.name}:${r.pattern}`))], ['tokenizer:auditline-tokenizer-:prefixed', 'operator:auditline-dlq-redrive-:prefixed'], 'a redrive sends in transactions of one id per DLQ topic');
  assert.deepEqual(txn.filter((r) => r.role === 'operator').map((r) => r.operation).sort(), ['DESCRIBE', 'WRITE']);
});

test('AUDITLINE_KAFKA_ACL_PRINCIPALS: named roles replaced, others default; unknown roles, malformed principals and a role named twice refused by name', () => {
  const p = parsePrincipals(' tokenizer=User:tok , hotstore=User:CN=hot.example.com ');
  assert.equal(p.tokenizer, 'User:tok');
  assert.equal(p.hotstore, 'User:CN=hot.example.com');
  assert.equal(p.archiver, 'User:auditline-archiver');
  assert.deepEqual(parsePrincipals(undefined), defaultPrincipals());
  for (const bad of ['tokeniser=User:x', 'tokenizer', 'tokenizer=tok', 'tokenizer=User:a b']) {
    assert.throws(() => parsePrincipals(bad), (e) => isAuditlineError(e, 'CONFIG_INVALID') && /AUDITLINE_KAFKA_ACL_PRINCIPALS/.test(e.message), bad);
  }
  // A role named twice: the second principal silently replaced the first.
  for (const twice of ['tokenizer=User:a,tokenizer=User:b', 'tokenizer=User:a, hotstore=User:h, tokenizer=User:a']) {
    assert.throws(() => parsePrincipals(twice), (e) => isAuditlineError(e, 'CONFIG_INVALID') && /^invalid setting AUDITLINE_KAFKA_ACL_PRINCIPALS: role tokenizer is named twice/.test(e.message), twice);
  }
});

test('kafka-acls.sh commands: one per rule, prefixed resources marked, principals quoted', () => {
  const lines = aclCommands(rules, 'b1:9092');
  assert.equal(lines.length, rules.length);
  assert.ok(lines.includes("kafka-acls.sh --bootstrap-server b1:9092 --command-config admin.properties --add --allow-principal 'User:auditline-tokenizer' --operation Read --topic 'audit.raw'"));
  assert.ok(lines.includes("kafka-acls.sh --bootstrap-server b1:9092 --command-config admin.properties --add --allow-principal 'User:auditline-tokenizer' --operation Write --transactional-id 'auditline-tokenizer-' --resource-pattern-type prefixed"));
});

test('acls: --commands, --json and --apply exclude each other (exit 2); each alone prints its own output', (t) => {
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-acls-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  // A port nothing listens on: --apply that went on to the broker would fail there with exit 1.
  const env = { ...process.env, AUDITLINE_STACK_KAFKA_PORT: '1', AUDITLINE_STACK_DIR: stackDir, AUDITLINE_CACHE_DIR: path.join(stackDir, 'cache') };
  const acls = (...args: string[]) => spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'acls', ...args], { encoding: 'utf8', env });
  for (const [a, b] of [['--json', '--commands'], ['--commands', '--json'], ['--apply', '--json'], ['--commands', '--apply']] as const) {
    const r = acls(a, b);
    assert.equal(r.status, 2, `${a} ${b}: ${r.stderr}`);
    assert.equal(r.stdout, '', `${a} ${b}`);
    assert.match(r.stderr, /^error: option '--\w+' cannot be used with option '--\w+'/, `${a} ${b}`);
  }
  const json = acls('--json');
  assert.equal(json.status, 0, json.stderr);
  assert.equal((JSON.parse(json.stdout) as unknown[]).length, rules.length);
  const commands = acls('--commands');
  assert.equal(commands.status, 0, commands.stderr);
  assert.match(commands.stdout, /^kafka-acls\.sh /);
});
