import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { assetPath } from '../../core/paths.js';
import { reportError } from '../../cli/exit.js';
import { AuditlineError } from '../../core/errors.js';

// `npx auditline …` (every command in the README) runs the package's bin file itself, not through `node`.
test('the compiled CLI runs as an executable file, the way `npx auditline` starts it', () => {
  const r = spawnSync(assetPath('dist', 'cli', 'main.js'), ['--help'], { encoding: 'utf8' });
  assert.equal(r.error, undefined, `cannot execute dist/cli/main.js: ${r.error?.message}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: auditline /m);
});

test('wrong usage exits 2 whether the command or commander finds it; --help and --version exit 0', (t) => {
  // A stack directory of its own: the commands' local secrets are not created in the project's.
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-usage-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  const run = (...args: string[]) => spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', env: { ...process.env, AUDITLINE_STACK_DIR: stackDir } });
  for (const args of [['query', 'failed'], ['query', 'failed', '--workflow'], ['query', 'failed', '--workflow', 'WF-1', '--bogus'], ['bogus'], ['query', 'inputs'], ['reveal', 'x']]) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /error: /, args.join(' '));
  }
  assert.equal(run('query', 'failed', '--workflow', 'WF-1', '--since', 'yesterday').status, 2, 'a bad value the command checks itself');
  for (const args of [['--help'], ['--version'], ['query', '--help']]) assert.equal(run(...args).status, 0, args.join(' '));
});

test("kafkajs' own errors are reported as KAFKA_UNAVAILABLE naming the setting, without a stack trace", () => {
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
  let code: number;
  try {
    const cause = new kafkajs.KafkaJSConnectionError('Connection error: connect ECONNREFUSED 127.0.0.1:1');
    code = reportError(new kafkajs.KafkaJSNonRetriableError(cause));
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 1);
  assert.equal(written.join(''), 'auditline: KAFKA_UNAVAILABLE: Connection error: connect ECONNREFUSED 127.0.0.1:1 (AUDITLINE_KAFKA_BROKERS)\n');
});

test('stack status only reads: it creates no secret files in the stack directory', (t) => {
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-status-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  // Ports nothing listens on (so no probe reaches a real service) and a cache of its own.
  const ports = { AUDITLINE_STACK_KAFKA_PORT: '1', AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '2', AUDITLINE_STACK_REGISTRY_PORT: '3', AUDITLINE_STACK_CLICKHOUSE_PORT: '4', AUDITLINE_STACK_S3_PORT: '5' };
  const env = { ...process.env, ...ports, AUDITLINE_STACK_DIR: stackDir, AUDITLINE_CACHE_DIR: path.join(stackDir, 'cache') };
  const r = spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'stack', 'status', '--json'], { encoding: 'utf8', env });
  assert.equal(r.status, 3, r.stderr);
  assert.deepEqual(readdirSync(stackDir), [], 'nothing was written');
});

test('reveal and query inputs --reveal without --as (and no principals file) exit 2 before anything is read, also with ClickHouse unreachable', (t) => {
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-reveal-as-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  // Ports nothing listens on: a command that read the hot store first would fail there (exit 1) instead.
  const ports = { AUDITLINE_STACK_KAFKA_PORT: '1', AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '2', AUDITLINE_STACK_REGISTRY_PORT: '3', AUDITLINE_STACK_CLICKHOUSE_PORT: '4', AUDITLINE_STACK_S3_PORT: '5' };
  const env: NodeJS.ProcessEnv = { ...process.env, ...ports, AUDITLINE_STACK_DIR: stackDir, AUDITLINE_CACHE_DIR: path.join(stackDir, 'cache') };
  delete env.AUDITLINE_REVEAL_PRINCIPALS_FILE;
  const id = '00000000-0000-4000-8000-000000000000';
  for (const args of [
    ['reveal', id, '--role', 'engineering', '--reason', 'INC-1234 failed sync'],
    ['query', 'inputs', id, '--reveal', '--role', 'engineering', '--reason', 'INC-1234 failed sync'],
  ]) {
    const r = spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', env });
    assert.equal(r.status, 2, `${args.slice(0, 2).join(' ')}: ${r.stderr}`);
    assert.equal(r.stderr, 'auditline: --as is required (who is asking), unless AUDITLINE_REVEAL_PRINCIPALS_FILE identifies the caller\n', args.slice(0, 2).join(' '));
  }
});

test('a retention settings file that cannot be read is an invalid setting: exit 2, so that `run` is not restarted by `pipeline`', (t) => {
  const written: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string) => written.push(String(chunk)) > 0) as typeof process.stderr.write;
  let code: number;
  try {
    code = reportError(new AuditlineError('RETENTION_INVALID', 'retention settings x.yaml: data_classes: required'));
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 2);
  assert.equal(written.join(''), 'auditline: RETENTION_INVALID: retention settings x.yaml: data_classes: required\n');

  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-retention-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  const ports = { AUDITLINE_STACK_KAFKA_PORT: '1', AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '2', AUDITLINE_STACK_REGISTRY_PORT: '3', AUDITLINE_STACK_CLICKHOUSE_PORT: '4', AUDITLINE_STACK_S3_PORT: '5' };
  const env = { ...process.env, ...ports, AUDITLINE_STACK_DIR: stackDir, AUDITLINE_CACHE_DIR: path.join(stackDir, 'cache'), AUDITLINE_RETENTION_FILE: path.join(stackDir, 'missing.yaml'), AUDITLINE_ARCHIVER_METRICS_PORT: '0' };
  for (const args of [['run', 'archiver'], ['setup'], ['retention', 'plan']]) {
    const r = spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', env });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^auditline: RETENTION_INVALID: cannot read retention settings .*missing\.yaml: ENOENT/, args.join(' '));
  }
});
