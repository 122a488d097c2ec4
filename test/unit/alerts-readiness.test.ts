import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { AlertsService, loadAlertsConfig } from '../../consumers/alerts/index.js';

/** The two channels' webhooks the shipped channels file needs. */
const WEBHOOKS = {
  AUDITLINE_ALERTS_SECURITY_WEBHOOK_URL: 'https://hooks.example.com/security',
  AUDITLINE_ALERTS_SECURITY_WEBHOOK_SECRET: 'security-secret-0123456789',
  AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_URL: 'https://hooks.example.com/compliance',
  AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_SECRET: 'compliance-secret-0123456789',
};

/** The value of an unlabelled gauge, as /metrics would show it. */
async function gauge(registry: Registry, name: string): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name);
  assert.ok(metric, `${name} is registered`);
  return (await metric.get()).values[0]?.value;
}

test("each stage's ready gauge follows its own readiness: auditline_alerts_ready the whole service's /readyz, auditline_alerts_rules_ready stage 2's", async () => {
  const config = loadAlertsConfig(WEBHOOKS);
  const registry = new Registry();
  const service = new AlertsService(config, { logger: pino({ level: 'silent' }), registry });
  // Nothing is started (no Kafka, no ClickHouse): the stages' group membership and ClickHouse's answer are set here.
  const inner = service as unknown as {
    signalConsumer: { joined: boolean };
    ruleConsumer: { joined: boolean };
    delivery: { joined: boolean };
    store: { ping(): Promise<boolean> };
    clickhouse: { close(): Promise<void> };
  };
  let clickhouse = true;
  inner.store.ping = async () => clickhouse;
  const state = async (stages: { signal: boolean; rules: boolean; delivery: boolean }) => {
    inner.signalConsumer.joined = stages.signal;
    inner.ruleConsumer.joined = stages.rules;
    inner.delivery.joined = stages.delivery;
    const { ready } = await service.readiness();
    return { ready, service: await gauge(registry, 'auditline_alerts_ready'), rules: await gauge(registry, 'auditline_alerts_rules_ready') };
  };
  try {
    assert.deepEqual(await state({ signal: true, rules: true, delivery: true }), { ready: true, service: 1, rules: 1 });
    assert.deepEqual(await state({ signal: false, rules: true, delivery: true }), { ready: false, service: 0, rules: 1 }, 'stage 1 out of its group: stage 2 is still ready');
    assert.deepEqual(await state({ signal: true, rules: false, delivery: true }), { ready: false, service: 0, rules: 0 }, 'stage 2 out of its group');
    clickhouse = false;
    assert.deepEqual(await state({ signal: true, rules: true, delivery: true }), { ready: false, service: 0, rules: 0 }, 'ClickHouse, stage 2\'s state store, not answering');
  } finally {
    await inner.clickhouse.close();
  }
});

test("the alerts service's ClickHouse requests time out within its group membership: half the session timeout, at most 20 s", () => {
  assert.equal(loadAlertsConfig(WEBHOOKS).clickhouseTimeoutMs, 15_000, 'the default session (30 s): 15 s');
  assert.equal(loadAlertsConfig({ ...WEBHOOKS, AUDITLINE_ALERTS_SESSION_TIMEOUT_MS: '60000' }).clickhouseTimeoutMs, 20_000, 'never more than 20 s');
  const short = loadAlertsConfig({ ...WEBHOOKS, AUDITLINE_ALERTS_SESSION_TIMEOUT_MS: '6000', AUDITLINE_ALERTS_RETRY_MAX_MS: '3000' });
  assert.equal(short.clickhouseTimeoutMs, 3_000, 'a 6 s session: 3 s');
  assert.ok(short.clickhouseTimeoutMs < short.sessionTimeoutMs);
});
