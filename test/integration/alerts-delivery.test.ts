import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createLogger } from '../../core/logger.js';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { AlertsService, loadAlertsConfig, parseRules } from '../../consumers/alerts/index.js';
import { makeAlert } from '../../consumers/alerts/alert.js';
import type { OutboxEntry } from '../../consumers/alerts/delivery.js';
import { clickhouse, createTokenizerDatabase } from '../helpers/tokenizer-stack.js';
import { tempDir } from '../helpers/temp-dir.js';
import { alertsEnv, createAlertsTopics, dropAlertsTopics, Receiver, writeAlertFiles, type AlertsNames } from '../helpers/alerts-fixtures.js';

const client = clickhouse();
const receiver = new Receiver();
const kafka = createKafka(loadEndpoints().kafka);
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
const stop = new AbortController();
const RULES = 'rules:\n  - { name: to-both, kind: match, severity: high, channels: [slow, fast], where: { workflow_id: WF-NONE } }\n';
let database: string;
let names: AlertsNames;
let service: AlertsService;

before(async () => {
  await receiver.up();
  database = await createTokenizerDatabase(client);
  names = await createAlertsTopics('alerts-delivery');
  const files = writeAlertFiles(tempDir('alerts-delivery'), RULES, {
    slow: { url: receiver.url('/slow'), secretEnv: 'IT_ALERTS_SECRET' },
    fast: { url: receiver.url('/fast'), secretEnv: 'IT_ALERTS_SECRET' },
  });
  // Backoff ceiling well above the test's waits: a due time is honoured as written.
  const env = alertsEnv(names, database, files, { AUDITLINE_ALERTS_DELIVERY_BACKOFF_MAX_MS: '60000' });
  const config = loadAlertsConfig({ ...process.env, IT_ALERTS_SECRET: 'test-secret-0123456789abcdef', ...env });
  service = new AlertsService(config, { logger: createLogger('alerts-delivery-it', 'warn'), registry: new Registry() });
  await service.start(stop.signal);
  await producer.connect();
});

after(async () => {
  stop.abort();
  await producer.disconnect();
  await service?.stop();
  await receiver.down();
  await dropAlertsTopics(names);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

/** An outbox record for `channel` on a given partition (each channel its own queue), due at `dueAt`. */
async function enqueue(channel: string, partition: number, dueAt: number): Promise<string> {
  const [rule] = parseRules(parse(RULES), 'test');
  const now = Date.now();
  const alert = makeAlert(rule!, `key-${channel}`, String(now), now, `test alert for ${channel}`, { event_ids: [], workflow_ids: ['WF-NONE'] }, [], 1);
  const entry: OutboxEntry = { alert, channel, attempt: 2, first_at: now, due_at: dueAt };
  await producer.send({ topic: names.outbox, acks: -1, messages: [{ partition, key: channel, value: JSON.stringify(entry) }] });
  return alert.alert_id;
}

test('a channel waiting out a retry backoff does not hold back the deliveries of another channel', async () => {
  const slowDue = Date.now() + 8_000;
  await enqueue('slow', 0, slowDue);
  // Let the worker fetch the slow channel's record and start waiting for it.
  await new Promise((r) => setTimeout(r, 1_500));
  const fastAt = Date.now();
  await enqueue('fast', 1, fastAt);
  const [fast] = await receiver.waitFor('/fast', 1, 4_000);
  assert.ok(fast!.at < slowDue, 'the other channel was delivered before the waiting one was due');
  assert.equal(receiver.on('/slow').length, 0, 'the waiting delivery is not sent early');
  const [slow] = await receiver.waitFor('/slow', 1, 15_000);
  assert.ok(slow!.at >= slowDue, `delivered at its due time, not before (${slow!.at - slowDue} ms)`);
  assert.equal(receiver.on('/slow').length, 1, 'once');
});
