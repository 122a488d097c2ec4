import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { ConsumerMetrics, consumerMetricDefinitions } from '../../core/service/index.js';
import { readHistogram } from '../helpers/metrics.js';


test('freshness: one observation per record, now minus its Kafka timestamp; a clock ahead counts as 0, no timestamp is skipped', async () => {
  const registry = new Registry();
  const metrics = new ConsumerMetrics(registry, 'svc');
  const now = 1_800_000_000_000;
  metrics.recordsStored(
    [{ timestamp: String(now - 200) }, { timestamp: String(now - 3_000) }, { timestamp: String(now + 500) }, { timestamp: '-1' }, { timestamp: '' }],
    now,
  );
  const h = await readHistogram(registry, 'auditline_svc_freshness_seconds');
  assert.equal(h.count, 3);
  assert.ok(Math.abs(h.sum - 3.2) < 1e-9, `sum ${h.sum}`);
  assert.equal(h.buckets.get(0.05), 1, 'the record from the future counts as 0 s');
  assert.equal(h.buckets.get(0.25), 2);
  assert.equal(h.buckets.get(2.5), 2);
  assert.equal(h.buckets.get(5), 3);
});

test('freshness and lag are part of every consumer service\'s definitions, with fixed label sets', () => {
  const d = consumerMetricDefinitions('tokenizer');
  assert.equal(d.freshness.name, 'auditline_tokenizer_freshness_seconds');
  assert.deepEqual([...d.freshness.labelNames], []);
  assert.equal(d.lag.name, 'auditline_tokenizer_consumer_lag_records');
  assert.deepEqual([...d.lag.labelNames], ['partition']);
});

test('lag per partition is never negative', async () => {
  const registry = new Registry();
  const metrics = new ConsumerMetrics(registry, 'svc');
  metrics.lagAfterCommit(0, 42);
  metrics.lagAfterCommit(1, -3);
  const lag = await registry.getSingleMetric('auditline_svc_consumer_lag_records')!.get();
  assert.deepEqual(
    lag.values.map((v) => [v.labels.partition, v.value]).sort(),
    [
      ['0', 42],
      ['1', 0],
    ],
  );
});
