import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { assetPath } from '../../core/paths.js';
import { consumerMetricDefinitions } from '../../core/service/index.js';
import { TOKENIZER_METRICS } from '../../consumers/tokenizer/metrics.js';

const doc = (name: string) => readFileSync(assetPath('docs', name), 'utf8');

test('every tokenizer metric is documented in docs/tokenizer.md and docs/metrics.md', () => {
  const tokenizer = doc('tokenizer.md');
  const metrics = doc('metrics.md');
  for (const { name } of Object.values(TOKENIZER_METRICS)) {
    assert.ok(tokenizer.includes(`\`${name}\``), `${name} in docs/tokenizer.md`);
    assert.ok(metrics.includes(`\`${name}\``), `${name} in docs/metrics.md`);
  }
  for (const { name } of Object.values(consumerMetricDefinitions('tokenizer'))) {
    assert.ok(metrics.includes(`\`${name.replace('auditline_tokenizer_', 'auditline_<service>_')}\``), `${name} in docs/metrics.md`);
  }
});

test('every tokenizer setting and error code is documented', () => {
  const source = readFileSync(assetPath('consumers', 'tokenizer', 'config.ts'), 'utf8');
  const names = [...source.matchAll(/\$\{P\}([A-Z_]+)/g)].map((m) => `AUDITLINE_TOKENIZER_${m[1]}`);
  assert.ok(names.length > 10);
  const tokenizer = doc('tokenizer.md');
  for (const name of new Set(names)) assert.ok(tokenizer.includes(name) || tokenizer.includes(name.replace(/_FILE$/, '')), `${name} in docs/tokenizer.md`);
  const errors = doc('errors.md');
  for (const code of ['TOKENIZE_FAILED', 'PRODUCER_FENCED', 'PII_DECRYPT_FAILED', 'SUBJECT_ON_LEGAL_HOLD']) assert.ok(errors.includes(`\`${code}\``), `${code} in docs/errors.md`);
  const cli = doc('cli.md');
  for (const command of ['`reveal <execution_id>', '`erase [--email <address>] [--customer-id <id>]', '`erase --expired', '`legal-hold', '`run tokenizer`']) assert.ok(cli.includes(command), `${command} in docs/cli.md`);
});
