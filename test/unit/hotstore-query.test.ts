import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Registry } from 'prom-client';
import { assetPath } from '../../core/paths.js';
import { ConsumerMetrics } from '../../core/service/index.js';
import { HOTSTORE_SQL } from '../../consumers/hotstore/queries.js';
import { HotstoreMetrics } from '../../consumers/hotstore/metrics.js';
import { parseSince, renderRows } from '../../cli/commands/query.js';
import { UsageError } from '../../cli/exit.js';

test('--since takes s, m, h, d durations and refuses anything else', () => {
  assert.deepEqual(['30s', '15m', '1h', '7d', ' 2h '].map(parseSince), [30, 900, 3600, 604_800, 7200]);
  for (const bad of ['1', 'h', '0h', '-1h', '1.5h', '1w', 'yesterday', '401d']) assert.throws(() => parseSince(bad), UsageError, bad);
});

test('rows render as an aligned table, RFC 4180 CSV, or a JSON array, in the given column order', () => {
  const rows = [
    { id: 'a', n: 1, text: 'plain', extra: 'ignored' },
    { id: 'b', n: null, text: 'has "quotes", commas\nand a newline' },
  ];
  assert.equal(renderRows(rows, ['id', 'n', 'text'], 'table'), 'ID  N  TEXT\na   1  plain\nb      has "quotes", commas\\nand a newline\n');
  assert.equal(renderRows(rows, ['id', 'n', 'text'], 'csv'), 'id,n,text\r\na,1,plain\r\nb,,"has ""quotes"", commas\nand a newline"\r\n');
  assert.deepEqual(JSON.parse(renderRows(rows, ['id', 'n', 'text'], 'json')), [
    { id: 'a', n: 1, text: 'plain' },
    { id: 'b', n: null, text: 'has "quotes", commas\nand a newline' },
  ]);
});

test('CSV cells a spreadsheet would run as a formula start with a quote; numbers stay; times in the time columns become ISO 8601 UTC', () => {
  const rows = [
    { error_message: '=HYPERLINK("https://evil.example","Re-login")', n: '-12', at: '2026-12-07 19:06:46.496', step: '@SUM(A1)' },
    { error_message: '+1 more', n: '3.5', at: '', step: '-' },
  ];
  assert.equal(
    renderRows(rows, ['error_message', 'n', 'at', 'step'], 'csv', ['at']),
    `error_message,n,at,step\r\n"'=HYPERLINK(""https://evil.example"",""Re-login"")",-12,2026-12-07T19:06:46.496Z,'@SUM(A1)\r\n'+1 more,3.5,,'-\r\n`,
  );
  assert.deepEqual(JSON.parse(renderRows(rows, ['at'], 'json', ['at'])), [{ at: '2026-12-07T19:06:46.496Z' }, { at: '' }]);
  assert.equal(renderRows([{ at: '2026-12-07 19:06:46.496' }], ['at'], 'table'), 'AT\n2026-12-07 19:06:46.496\n', 'only the named time columns change');
});

test('docs/hotstore.md prints exactly the SQL the CLI runs', () => {
  const doc = readFileSync(assetPath('docs', 'hotstore.md'), 'utf8');
  for (const [name, sql] of Object.entries(HOTSTORE_SQL)) assert.ok(doc.includes(`\`\`\`sql\n${sql('audit')}\n\`\`\``), `${name} query in docs/hotstore.md`);
});

test('every hot store metric is documented in docs/hotstore.md and docs/metrics.md', async () => {
  const registry = new Registry();
  new ConsumerMetrics(registry, 'hotstore');
  new HotstoreMetrics(registry);
  const names = (await registry.getMetricsAsJSON()).map((m) => m.name);
  assert.ok(names.length >= 13);
  const hotstore = readFileSync(assetPath('docs', 'hotstore.md'), 'utf8');
  const metrics = readFileSync(assetPath('docs', 'metrics.md'), 'utf8');
  for (const name of names) {
    assert.ok(hotstore.includes(`\`${name}\``), `${name} in docs/hotstore.md`);
    assert.ok(metrics.includes(`\`${name}\``) || metrics.includes(`\`${name.replace('auditline_hotstore_', 'auditline_<service>_')}\``), `${name} in docs/metrics.md`);
  }
});
