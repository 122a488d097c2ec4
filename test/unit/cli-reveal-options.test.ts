import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkRevealOptions } from '../../cli/commands/reveal-access.js';
import { UsageError } from '../../cli/exit.js';
import { assetPath } from '../../core/paths.js';

const usage = (fn: () => unknown, message: RegExp) => assert.throws(fn, (e) => e instanceof UsageError && message.test(e.message));

test('--as, --role and --reason go with --reveal; --reveal needs --role and --reason', () => {
  checkRevealOptions({});
  checkRevealOptions({ reveal: true, role: 'engineering', reason: 'TICKET-1234' });
  checkRevealOptions({ reveal: true, as: 'bob', role: 'engineering', reason: 'TICKET-1234' });
  for (const opts of [{ as: 'bob' }, { role: 'engineering' }, { reason: 'TICKET-1234' }, { as: '' }]) usage(() => checkRevealOptions(opts), /^--as, --role and --reason go with --reveal$/);
  for (const opts of [{ reveal: true }, { reveal: true, role: 'engineering' }, { reveal: true, role: '', reason: 'TICKET-1234' }]) usage(() => checkRevealOptions(opts), /^--reveal needs --role and --reason/);
});

test('replay and query inputs refuse --as, --role or --reason without --reveal (exit 2) before the hot store or archive is read', (t) => {
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-reveal-options-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  // Ports nothing listens on: a command that went on to ClickHouse or S3 would fail there with exit 1 (or 5).
  const ports = { AUDITLINE_STACK_KAFKA_PORT: '1', AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '2', AUDITLINE_STACK_REGISTRY_PORT: '3', AUDITLINE_STACK_CLICKHOUSE_PORT: '4', AUDITLINE_STACK_S3_PORT: '5' };
  const env = { ...process.env, ...ports, AUDITLINE_STACK_DIR: stackDir, AUDITLINE_CACHE_DIR: path.join(stackDir, 'cache') };
  const id = '00000000-0000-0000-0000-000000000000';
  for (const [args, message] of [
    [['replay', id, '--as', 'bob'], /^auditline: --as, --role and --reason go with --reveal/],
    [['replay', id, '--role', 'engineering', '--reason', 'TICKET-1234'], /^auditline: --as, --role and --reason go with --reveal/],
    [['replay', id, '--reveal', '--as', 'bob', '--role', 'engineering'], /^auditline: --reveal needs --role and --reason/],
    [['query', 'inputs', id, '--as', 'bob'], /^auditline: --as, --role and --reason go with --reveal/],
  ] as const) {
    const r = spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', env });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
});
