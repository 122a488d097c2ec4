import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseTime, parseWindow } from '../../cli/commands/archive.js';
import { UsageError } from '../../cli/exit.js';
import { parseSinceTime } from '../../cli/commands/dlq.js';
import { resolvePeriod } from '../../compliance/period.js';
import { parseIsoInstant } from '../../core/iso-time.js';
import { assetPath } from '../../core/paths.js';

const usage = (fn: () => unknown, message: RegExp) => assert.throws(fn, (e) => e instanceof UsageError && message.test(e.message));

test('archive verify / access-log verify times: an ISO date (midnight UTC) or date-time; anything Date.parse would bend is wrong usage', () => {
  assert.equal(parseTime('--from', '2026-11-28')?.toISOString(), '2026-11-28T00:00:00.000Z');
  assert.equal(parseTime('--from', '2026-11-28T10:00:00Z')?.toISOString(), '2026-11-28T10:00:00.000Z');
  assert.equal(parseTime('--from', '2026-11-28T10:00+02:00')?.toISOString(), '2026-11-28T08:00:00.000Z');
  assert.equal(parseTime('--from', '2026-11-28 10:00:00.250Z')?.toISOString(), '2026-11-28T10:00:00.250Z');
  assert.equal(parseTime('--from', undefined), undefined);
  // Date.parse reads `5` as 2001-05-01 and `2026-02-30` as 2 March: both used to be verified silently.
  for (const bad of ['5', '12', 'Dec 1', 'tomorrow 1', '2026-02-30', '2026-13-01', '2026-11-28T24:00:00Z', '2026-11-28T10:60Z', '2026-11-28T10:00:00+24:00', '1/2/2026', '']) {
    usage(() => parseTime('--from', bad), new RegExp(`^--from ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: expected an ISO date \\(midnight UTC\\) or date-time with zone`));
  }
  assert.deepEqual(parseIsoInstant('2024-02-29'), { ms: Date.UTC(2024, 1, 29), dateOnly: true });
  assert.equal(parseIsoInstant('2026-02-29'), undefined);
});

test('a date-time without a zone is wrong usage in every command that takes a time: it was read as the local time of the machine', () => {
  // archive verify / access-log verify (--from, --to), dlq list --since and report (--from, --to) read times alike.
  for (const local of ['2026-12-01T10:00:00', '2026-12-01 10:00', '2026-12-01T10:00:00.5']) {
    assert.equal(parseIsoInstant(local), undefined, local);
    usage(() => parseTime('--from', local), /^--from ".*": expected an ISO date \(midnight UTC\) or date-time with zone/);
    usage(() => parseSinceTime(local), /^--since ".*": expected a duration like 15m, 1h, 7d, an ISO date \(midnight UTC\) or an ISO 8601 time with zone/);
    assert.match(String(resolvePeriod({ from: local, to: '2026-12-31' })), /^--from .*: expected a date \(2026-07-01\) or an ISO date-time with zone/);
  }
  // A date alone stays midnight UTC, wherever the command runs.
  assert.equal(parseTime('--to', '2026-12-01')?.toISOString(), '2026-12-01T00:00:00.000Z');
  assert.equal(parseSinceTime('2026-12-01'), Date.UTC(2026, 11, 1));
  assert.equal(parseSinceTime('2026-12-01T10:00:00+01:00'), Date.UTC(2026, 11, 1, 9));
});

test('a window whose --to is before its --from is wrong usage', () => {
  assert.deepEqual(parseWindow({ from: '2026-11-01', to: '2026-11-01' }), { from: new Date(Date.UTC(2026, 10, 1)), to: new Date(Date.UTC(2026, 10, 1)) });
  usage(() => parseWindow({ from: '2026-12-01', to: '2026-11-01' }), /^--to 2026-11-01 is before --from 2026-12-01$/);
});

test('archive verify, archive reindex, access-log verify and dlq list refuse bad values (exit 2) before they reach S3, ClickHouse or Kafka', (t) => {
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-times-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  // Ports nothing listens on: a command that went on to S3 or ClickHouse would fail there with exit 1.
  const ports = { AUDITLINE_STACK_KAFKA_PORT: '1', AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '2', AUDITLINE_STACK_REGISTRY_PORT: '3', AUDITLINE_STACK_CLICKHOUSE_PORT: '4', AUDITLINE_STACK_S3_PORT: '5' };
  const env = { ...process.env, ...ports, AUDITLINE_STACK_DIR: stackDir, AUDITLINE_CACHE_DIR: path.join(stackDir, 'cache') };
  for (const [args, message] of [
    [['archive', 'verify', '--no-index', '--from', '5'], /^auditline: --from "5": expected an ISO date \(midnight UTC\) or date-time with zone/],
    [['archive', 'verify', '--no-index', '--from', '2026-12-01T10:00:00'], /^auditline: --from "2026-12-01T10:00:00": expected an ISO date \(midnight UTC\) or date-time with zone/],
    [['access-log', 'verify', '--to', '2026-12-01T10:00:00'], /^auditline: --to "2026-12-01T10:00:00": expected an ISO date \(midnight UTC\) or date-time with zone/],
    [['dlq', 'list', '--since', '2026-12-01T10:00:00'], /^auditline: --since "2026-12-01T10:00:00": expected a duration like 15m, 1h, 7d, an ISO date \(midnight UTC\) or an ISO 8601 time with zone/],
    [['archive', 'verify', '--grace', '-5'], /^auditline: --grace "-5": expected a positive integer/],
    [['archive', 'verify', '--from', '2026-12-01', '--to', '2026-11-01'], /^auditline: --to 2026-11-01 is before --from 2026-12-01/],
    [['archive', 'reindex', '--from', '2026-02-30'], /^auditline: --from "2026-02-30": expected a day, YYYY-MM-DD/],
    [['archive', 'reindex', '--from', '2026-12-01', '--to', '2026-11-01'], /^auditline: --to 2026-11-01 is before --from 2026-12-01/],
    [['access-log', 'verify', '--from', '2026-12-01', '--to', '2026-11-01'], /^auditline: --to 2026-11-01 is before --from 2026-12-01/],
    [['access-log', 'verify', '--from', '2999-01-01'], /^auditline: --from 2999-01-01 is in the future/],
  ] as const) {
    const r = spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', env });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
});
