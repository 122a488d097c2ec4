import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { loadEndpoints } from '../../core/endpoints.js';
import type { Logger } from '../../core/logger.js';
import type { ManagedService } from '../../core/service/index.js';
import { AlertsService, loadAlertsConfig } from '../../consumers/alerts/index.js';
import { ArchiverService, loadArchiverConfig } from '../../consumers/archiver/index.js';
import { HotstoreService, loadHotstoreConfig } from '../../consumers/hotstore/index.js';
import { loadTokenizerConfig, TokenizerService } from '../../consumers/tokenizer/index.js';
import { valueSubject } from '../../schemas/index.js';
import { alertsEnv, createAlertsTopics, dropAlertsTopics, writeAlertFiles, type AlertsNames } from '../helpers/alerts-fixtures.js';
import { archiverEnv, createArchiveBucket, signingKeyPem } from '../helpers/archiver-stack.js';
import { hotstoreEnv, waitFor } from '../helpers/hotstore-stack.js';
import { registerTestSubjects } from '../helpers/subjects.js';
import { tempDir } from '../helpers/temp-dir.js';
import { clickhouse, createTokenizerDatabase, createTokenizerTopics, dropTokenizerTopics, tokenizerEnv, type TokenizerNames } from '../helpers/tokenizer-stack.js';

// Real Kafka, ClickHouse, S3 and registry: the topics exist, but the registry has no schema under the subjects the
// services read (as an empty registry, another environment, or one still loading its schemas after a restart).
const client = clickhouse();
const registryUrl = loadEndpoints().registry.url;
const stop = new AbortController();
let database: string;
let events: AlertsNames;
let raw: TokenizerNames;
const services: { name: string; service: ManagedService; logs: Record<string, unknown>[] }[] = [];

before(async () => {
  database = await createTokenizerDatabase(client);
  events = await createAlertsTopics('reg-subject', { subjects: false });
  raw = await createTokenizerTopics('reg-subject', 1, { subjects: false });
  const bucket = await createArchiveBucket(false);
  const fast = (service: string) => ({ [`AUDITLINE_${service}_RETRY_INITIAL_MS`]: '100', [`AUDITLINE_${service}_RETRY_MAX_MS`]: '500' });
  const files = writeAlertFiles(tempDir('reg-subject'), 'rules:\n  - { name: none, kind: match, severity: high, channels: [c], where: { workflow_id: WF-NONE } }\n', {
    c: { url: 'http://127.0.0.1:9/c', secretEnv: 'IT_REG_SUBJECT_SECRET' },
  });
  const env = { ...process.env, IT_REG_SUBJECT_SECRET: 'test-secret-0123456789abcdef' };
  const add = (name: string, make: (deps: { logger: Logger; registry: Registry }) => ManagedService) => {
    const logs: Record<string, unknown>[] = [];
    const logger: Logger = pino({ level: 'warn' }, { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) });
    services.push({ name, service: make({ logger, registry: new Registry() }), logs });
  };
  // Three readers of the events topic (each its own group) and the tokenizer, reader of the raw topic.
  add('hotstore', (deps) => new HotstoreService(loadHotstoreConfig({ ...env, ...hotstoreEnv({ topic: events.events, dlq: events.dlq, group: `${events.group}-hs` }, database, fast('HOTSTORE')) }), deps));
  add('archiver', (deps) => new ArchiverService(loadArchiverConfig({ ...env, ...archiverEnv({ topic: events.events, dlq: events.dlq, group: `${events.group}-arch`, database, bucket, signingKey: signingKeyPem().privatePem }, fast('ARCHIVER')) }), deps));
  add('alerts', (deps) => new AlertsService(loadAlertsConfig({ ...env, ...alertsEnv(events, database, files, fast('ALERTS')) }), deps));
  add('tokenizer', (deps) => new TokenizerService(loadTokenizerConfig({ ...env, ...tokenizerEnv(raw, database, undefined, fast('TOKENIZER')) }), deps));
});

after(async () => {
  stop.abort();
  for (const { service } of services) await service.stop().catch(() => undefined);
  await dropAlertsTopics(events);
  await dropTokenizerTopics(raw);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

test('a consumer service does not start on a registry without the subject it reads: it waits (not ready), naming the registry and the subject, and starts once the subject exists', { timeout: 90_000 }, async () => {
  const outcomes = services.map(({ service }) => {
    const outcome = { settled: false, error: undefined as unknown };
    void service.start(stop.signal).then(
      () => (outcome.settled = true),
      (err: unknown) => Object.assign(outcome, { settled: true, error: err }),
    );
    return outcome;
  });
  const subjectOf = (name: string) => valueSubject(name === 'tokenizer' ? raw.raw : events.events);
  await waitFor(
    'every service retried the missing subject three times',
    async () => services.every(({ name, logs }) => logs.filter((l) => l.code === 'SCHEMA_NOT_FOUND' && String(l.err).includes(subjectOf(name))).length >= 3),
    20_000,
  );
  for (const [i, { name, service, logs }] of services.entries()) {
    assert.equal(outcomes[i]!.settled, false, `${name}: start() must not complete (nor fail) while the registry lacks ${subjectOf(name)}`);
    assert.equal((await service.readiness()).ready, false, `${name}: not ready`);
    const line = logs.find((l) => l.code === 'SCHEMA_NOT_FOUND')!;
    assert.equal(line.msg, 'schema registry not ready yet; retrying');
    assert.ok(String(line.err).includes(registryUrl), `${name}: the message names the registry URL: ${String(line.err)}`);
    assert.match(String(line.err), /has no version of subject .*auditline setup/);
  }

  await registerTestSubjects([events.events, raw.raw]);
  await waitFor('every service started', async () => outcomes.every((o) => o.settled), 30_000);
  for (const [i, { name }] of services.entries()) assert.equal(outcomes[i]!.error, undefined, `${name}: started without error`);
  for (const { name, service } of services) await waitFor(`${name} ready`, async () => (await service.readiness()).ready, 30_000);
});
