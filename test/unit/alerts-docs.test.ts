import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { assetPath } from '../../core/paths.js';
import { ALERTS_METRICS } from '../../consumers/alerts/index.js';

const doc = (name: string) => readFileSync(assetPath('docs', name), 'utf8');

test('every alerts metric, setting and error code is documented', () => {
  for (const { name } of Object.values(ALERTS_METRICS)) {
    assert.ok(doc('alerts.md').includes(`\`${name}\``), `${name} in docs/alerts.md`);
    assert.ok(doc('metrics.md').includes(`\`${name}\``), `${name} in docs/metrics.md`);
  }
  const source = readFileSync(assetPath('consumers', 'alerts', 'config.ts'), 'utf8');
  const names = [...source.matchAll(/\$\{P\}([A-Z_]+)/g)].map((m) => `AUDITLINE_ALERTS_${m[1]}`);
  assert.ok(names.length >= 10);
  for (const name of new Set(names)) {
    assert.ok(doc('alerts.md').includes(name), `${name} in docs/alerts.md`);
    assert.ok(doc('configuration.md').includes(name), `${name} in docs/configuration.md`);
  }
  for (const code of ['ALERT_DELIVERY_FAILED', 'SSRF_REFUSED']) assert.ok(doc('errors.md').includes(`\`${code}\``), `${code} in docs/errors.md`);
  assert.ok(doc('cli.md').includes('`run alerts`'));
  assert.ok(doc('topics.md').includes('`audit.alerts.outbox`') && doc('topics.md').includes('`audit.alerts.signals`'));
});
