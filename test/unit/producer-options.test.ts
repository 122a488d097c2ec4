import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { inspect } from 'node:util';
import { Registry } from 'prom-client';
import { isAuditlineError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { createAuditProducer, producerOptionsFromEnv, resolveProducerOptions, type ProducerOptions } from '../../producers/index.js';
import { defaultSpoolDir, MAX_PAYLOAD_BYTES } from '../../producers/options.js';
import { MAX_RECORD_BYTES, recordBytes } from '../../core/clients/record-size.js';
import { auditEventSchema } from '../../schemas/index.js';
import { kindOf, MemoryHost } from '../helpers/producer-host.js';
import { PRODUCER_ENV_VARS } from '../../producers/env-options.js';
import { assetPath } from '../../core/paths.js';

const base: ProducerOptions = { brokers: ['127.0.0.1:9092'], schemaRegistryUrl: 'http://127.0.0.1:8081/apis/ccompat/v7/', service: 'billing-worker' };

function rejects(options: unknown, option: string, rule: RegExp): void {
  assert.throws(
    () => resolveProducerOptions(options as ProducerOptions),
    (e) => {
      assert.ok(isAuditlineError(e, 'PRODUCER_INVALID_OPTIONS'), String(e));
      assert.equal(e.details.option, option);
      assert.match(e.message, new RegExp(`invalid producer option ${option.replace(/[[\]()]/g, '\\$&')}: ${rule.source}`));
      return true;
    },
  );
}

test('defaults fill every optional setting; undefined counts as not given', () => {
  const o = resolveProducerOptions({ ...base, lingerMs: undefined });
  assert.equal(o.topic, 'audit.raw');
  assert.equal(o.clientId, 'auditline-billing-worker');
  assert.equal(o.schemaRegistryUrl, 'http://127.0.0.1:8081/apis/ccompat/v7', 'trailing slash removed');
  assert.equal(o.ack, 'broker');
  assert.equal(o.onAuditFailure, 'throw');
  assert.equal(o.spoolDir, defaultSpoolDir('billing-worker'));
  assert.equal(defaultSpoolDir('w', { XDG_STATE_HOME: '/var/lib/state' }), '/var/lib/state/auditline/spool/w');
  assert.equal(defaultSpoolDir('w', {}), path.join(os.homedir(), '.local', 'state', 'auditline', 'spool', 'w'), 'not under os.tmpdir(), a tmpfs on many hosts');
  assert.equal(o.piiMode, 'cleartext');
  assert.deepEqual(o.piiFields, ['customer_email', 'customer_name', 'phone_number', 'billing_address']);
  assert.equal(o.maxPayloadBytes, 256 * 1024);
  assert.equal(o.maxWaitingEvents, 100_000);
  assert.equal(o.lingerMs, 5);
  assert.equal(o.sendTimeoutMs, 5000);
  assert.ok(Object.isFrozen(o));
});

test('missing required options are named, with their environment variable', () => {
  rejects({}, 'brokers', /required \(or set AUDITLINE_KAFKA_BROKERS\)/);
  rejects({ ...base, service: undefined }, 'service', /required \(or set AUDITLINE_PRODUCER_SERVICE\)/);
  assert.throws(() => createAuditProducer({} as ProducerOptions), (e) => isAuditlineError(e, 'PRODUCER_INVALID_OPTIONS'));
});

test('unknown and malformed options are rejected with their path', () => {
  rejects({ ...base, lingerMS: 5 }, 'lingerMS', /unknown option/);
  rejects({ ...base, brokers: ['127.0.0.1:9092', 'localhost'] }, 'brokers[1]', /must be host:port/);
  rejects({ ...base, brokers: [] }, 'brokers', /must name at least one broker/);
  rejects({ ...base, sasl: { mechanism: 'md5', username: 'u', password: 'p' } }, 'sasl.mechanism', /Invalid option/);
  rejects({ ...base, lingerMs: -1 }, 'lingerMs', /must be at least 0/);
  rejects({ ...base, maxPayloadBytes: 1.5 }, 'maxPayloadBytes', /must be an integer/);
  rejects({ ...base, ack: 'disk' }, 'ack', /Invalid option/);
  rejects({ ...base, service: 'billing worker' }, 'service', /must be 1-100 characters/);
  rejects({ ...base, logger: console.log }, 'logger', /must have debug, info, warn and error functions/);
  rejects({ ...base, metrics: {} }, 'metrics', /must be a prom-client Registry/);
  rejects('brokers=x', '(root)', /must be an object/);
  // fetch puts the whole URL into its error messages, which reach logs: credentials belong in schemaRegistryAuth.
  rejects({ ...base, schemaRegistryUrl: 'https://svc:S3cretPw@registry:8081' }, 'schemaRegistryUrl', /must not carry a user name or password .*schemaRegistryAuth/);
  assert.throws(() => resolveProducerOptions({ ...base, schemaRegistryUrl: 'https://svc:S3cretPw@registry:8081' }), (e) => !(e as Error).message.includes('S3cretPw'));
});

test('cross-option rules: hash mode needs a key, spool acks need a spool', () => {
  rejects({ ...base, piiMode: 'hash' }, 'piiHashKey', /required when piiMode is 'hash'/);
  rejects({ ...base, ack: 'spool', spoolDir: false }, 'spoolDir', /must be a directory when ack is 'spool'/);
  rejects({ ...base, maxBatchEvents: 20, maxQueuedEvents: 10 }, 'maxBatchEvents', /must not exceed maxQueuedEvents/);
});

test('maxBatchBytes above maxSpoolBytes is refused (such a batch could never be spooled), unless there is no spool', () => {
  const MiB = 1024 * 1024;
  rejects({ ...base, maxBatchBytes: 2 * MiB, maxSpoolBytes: MiB }, 'maxBatchBytes', /must not exceed maxSpoolBytes: a batch that large could never be spooled/);
  rejects({ ...base, ack: 'spool', maxBatchBytes: 2 * MiB + 1, maxSpoolBytes: 2 * MiB }, 'maxBatchBytes', /must not exceed maxSpoolBytes/);
  assert.equal(resolveProducerOptions({ ...base, maxBatchBytes: MiB, maxSpoolBytes: MiB }).maxBatchBytes, MiB, 'equal is fine');
  assert.equal(resolveProducerOptions({ ...base, maxBatchBytes: 2 * MiB, maxSpoolBytes: MiB, spoolDir: false }).maxBatchBytes, 2 * MiB, 'no spool, nothing to fit');
});

test('secrets never appear in an option error', () => {
  const secret = 'short-secret';
  assert.throws(
    () => resolveProducerOptions({ ...base, piiMode: 'hash', piiHashKey: secret.slice(0, 10) }),
    (e) => isAuditlineError(e, 'PRODUCER_INVALID_OPTIONS') && /piiHashKey: must be at least 16 characters/.test(e.message) && !e.message.includes('short-secr'),
  );
});

test('a pino logger and a prom-client registry are accepted as they are', () => {
  const logger = createLogger('unit', 'silent');
  const metrics = new Registry();
  const o = resolveProducerOptions({ ...base, logger, metrics });
  assert.equal(o.logger, logger);
  assert.equal(o.metrics, metrics);
});

test('options from environment variables: only set ones, typed, then validated like any option', () => {
  const env = {
    AUDITLINE_KAFKA_BROKERS: 'k1:9092, k2:9093',
    AUDITLINE_SCHEMA_REGISTRY_URL: 'http://registry:8081',
    AUDITLINE_PRODUCER_SERVICE: 'billing-worker',
    AUDITLINE_PRODUCER_ACK: 'spool',
    AUDITLINE_PRODUCER_ON_AUDIT_FAILURE: 'continue',
    AUDITLINE_PRODUCER_PII_MODE: 'mask',
    AUDITLINE_PRODUCER_PII_FIELDS: 'customer_email,iban',
    AUDITLINE_PRODUCER_LINGER_MS: '20',
    AUDITLINE_PRODUCER_MAX_WAITING_EVENTS: '5000',
    AUDITLINE_KAFKA_SSL: 'true',
    AUDITLINE_PRODUCER_TOPIC: ' ',
  };
  const fromEnv = producerOptionsFromEnv(env);
  assert.deepEqual(fromEnv, {
    brokers: ['k1:9092', 'k2:9093'],
    schemaRegistryUrl: 'http://registry:8081',
    service: 'billing-worker',
    ack: 'spool',
    onAuditFailure: 'continue',
    piiMode: 'mask',
    piiFields: ['customer_email', 'iban'],
    lingerMs: 20,
    maxWaitingEvents: 5000,
    ssl: true,
  });
  const resolved = resolveProducerOptions(fromEnv as ProducerOptions);
  assert.equal(resolved.topic, 'audit.raw');
  assert.equal(producerOptionsFromEnv({ AUDITLINE_PRODUCER_SPOOL_DIR: 'off' }).spoolDir, false);
  assert.throws(
    () => producerOptionsFromEnv({ AUDITLINE_PRODUCER_LINGER_MS: 'soon' }),
    // The reason in words, never the value (core/env.ts: a secret in the wrong variable stays out of the logs).
    (e) => isAuditlineError(e, 'CONFIG_INVALID') && /AUDITLINE_PRODUCER_LINGER_MS: must be a whole number$/.test(e.message) && !e.message.includes('soon'),
  );
  rejects({ ...fromEnv, lingerMs: -5 }, 'lingerMs', /must be at least 0/);
});

test('resolved options print without their secrets (JSON.stringify, util.inspect), and keep them for the client', () => {
  const o = resolveProducerOptions({
    ...base,
    sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'SaslSecret-1' },
    schemaRegistryAuth: { username: 'svc', password: 'RegistrySecret-2' },
    piiMode: 'hash',
    piiHashKey: 'HashKeySecret-3-0123456789',
  });
  for (const printed of [JSON.stringify(o), inspect(o, { depth: 5 }), JSON.stringify({ producer: { options: o } })]) {
    for (const secret of ['SaslSecret-1', 'RegistrySecret-2', 'HashKeySecret-3']) assert.ok(!printed.includes(secret), `${secret} printed in ${printed.slice(0, 200)}`);
    assert.match(printed, /svc/, 'the rest is printed');
  }
  assert.equal(o.sasl?.password, 'SaslSecret-1');
  assert.equal(o.schemaRegistryAuth?.password, 'RegistrySecret-2');
  assert.equal(o.piiHashKey, 'HashKeySecret-3-0123456789');
});

test('credentials from the environment given in part are refused, naming the missing variable, instead of connecting without them', () => {
  const missing = (env: Record<string, string>, variable: string) =>
    assert.throws(
      () => producerOptionsFromEnv(env),
      (e) => isAuditlineError(e, 'CONFIG_INVALID') && e.message.includes(variable) && e.details.setting === variable && !e.message.includes('s3cret'),
      variable,
    );
  missing({ AUDITLINE_KAFKA_SASL_USERNAME: 'svc', AUDITLINE_KAFKA_SASL_PASSWORD: 's3cret' }, 'AUDITLINE_KAFKA_SASL_MECHANISM');
  missing({ AUDITLINE_KAFKA_SASL_MECHANISM: 'plain', AUDITLINE_KAFKA_SASL_PASSWORD: 's3cret' }, 'AUDITLINE_KAFKA_SASL_USERNAME');
  missing({ AUDITLINE_KAFKA_SASL_MECHANISM: 'plain', AUDITLINE_KAFKA_SASL_USERNAME: 'svc' }, 'AUDITLINE_KAFKA_SASL_PASSWORD');
  missing({ AUDITLINE_SCHEMA_REGISTRY_PASSWORD: 's3cret' }, 'AUDITLINE_SCHEMA_REGISTRY_USERNAME');
  assert.deepEqual(producerOptionsFromEnv({ AUDITLINE_KAFKA_SASL_MECHANISM: 'plain', AUDITLINE_KAFKA_SASL_USERNAME: 'svc', AUDITLINE_KAFKA_SASL_PASSWORD: 's3cret' }).sasl, { mechanism: 'plain', username: 'svc', password: 's3cret' });
  assert.deepEqual(producerOptionsFromEnv({ AUDITLINE_SCHEMA_REGISTRY_USERNAME: 'svc' }).schemaRegistryAuth, { username: 'svc', password: '' });
});

test('every producer environment variable is documented in docs/producer.md and docs/configuration.md', () => {
  const doc = (name: string) => readFileSync(assetPath('docs', name), 'utf8');
  const names = Object.values(PRODUCER_ENV_VARS).map(([name]) => name);
  assert.ok(names.filter((n) => n.startsWith('AUDITLINE_PRODUCER_')).length >= 20);
  for (const name of names) {
    for (const file of ['producer.md', 'configuration.md']) assert.ok(doc(file).includes(`\`${name}\``), `${name} in docs/${file}`);
  }
});

test('maxPayloadBytes is capped at what can be sent: at the cap the largest events fit in a Kafka record; above it the option is refused, saying why', async () => {
  assert.equal(resolveProducerOptions({ ...base, maxPayloadBytes: MAX_PAYLOAD_BYTES }).maxPayloadBytes, MAX_PAYLOAD_BYTES);
  rejects({ ...base, maxPayloadBytes: MAX_PAYLOAD_BYTES + 1 }, 'maxPayloadBytes', /must be at most \d+: a step event carries its input, output and error message, each up to this size, in one Kafka record of at most 983040 bytes/);
  rejects({ ...base, maxPayloadBytes: 8 * 1024 * 1024 }, 'maxPayloadBytes', /must be at most/);

  // The largest events the API can build at the cap: every payload and free text over the limit (so cut to it),
  // every name and id at its longest in 3-byte UTF-8 characters, both headers.
  const host = new MemoryHost('throw', {}, MAX_PAYLOAD_BYTES);
  const long = (n: number) => '€'.repeat(n);
  const big = { data: long(MAX_PAYLOAD_BYTES), customer_email: long(1000) };
  const run = await host.startExecution({
    workflowId: long(200),
    workflowName: long(500),
    workflowVersion: long(100),
    trigger: 'api',
    triggeredBy: { kind: 'service', id: long(200) },
    correlationId: long(200),
    input: big,
  });
  await run.recordStep({ name: long(500), status: 'failed', startTime: 0, endTime: 1, input: big, output: big, error: { type: long(500), message: long(MAX_PAYLOAD_BYTES) } });
  await run.decision({ condition: long(10_000), taken: long(500), reason: long(MAX_PAYLOAD_BYTES), values: big });
  await run.finish('failed', { output: big, error: new Error(long(MAX_PAYLOAD_BYTES)) });
  assert.equal(host.events.length, 4);
  const type = auditEventSchema().type;
  for (const event of host.events) {
    const record = { key: Buffer.from(event.execution_id), value: Buffer.alloc(5 + type.toBuffer(event).length), headers: { 'auditline-pii-mode': 'cleartext', 'auditline-pii-found': 'true' } };
    const bytes = recordBytes(record);
    assert.ok(bytes <= MAX_RECORD_BYTES, `${kindOf(event)}: ${bytes} bytes, above ${MAX_RECORD_BYTES}`);
    if (kindOf(event) === 'StepFinished') assert.ok(bytes > 2.8 * MAX_PAYLOAD_BYTES, `three payloads near the cap (${bytes} bytes)`);
  }
});

test('credentials that would cross the network in the clear are refused (SASL without TLS, registry auth over http://) unless allowPlaintextCredentials; loopback is fine', () => {
  const sasl = { mechanism: 'plain' as const, username: 'svc', password: 'SaslSecret-1' };
  const remote = { ...base, brokers: ['127.0.0.1:9092', 'kafka-1.prod.internal:9092'] };
  rejects({ ...remote, sasl }, 'ssl', /must be true when sasl credentials go to a broker other than loopback \(kafka-1\.prod\.internal:9092\)/);
  assert.equal(resolveProducerOptions({ ...remote, sasl, ssl: true }).ssl, true);
  assert.equal(resolveProducerOptions({ ...base, brokers: ['localhost:9092', '127.0.0.2:9093'], sasl }).sasl?.username, 'svc', 'loopback only');
  assert.equal(resolveProducerOptions({ ...remote, sasl, allowPlaintextCredentials: true }).allowPlaintextCredentials, true);
  const auth = { username: 'svc', password: 'RegistrySecret-2' };
  rejects({ ...base, schemaRegistryUrl: 'http://registry.prod.internal:8081', schemaRegistryAuth: auth }, 'schemaRegistryUrl', /must be https:\/\/ when schemaRegistryAuth is set/);
  assert.ok(resolveProducerOptions({ ...base, schemaRegistryUrl: 'https://registry.prod.internal', schemaRegistryAuth: auth }).schemaRegistryAuth);
  assert.ok(resolveProducerOptions({ ...base, schemaRegistryAuth: auth }).schemaRegistryAuth, 'loopback registry');
  // From the environment, with the services' opt-in variable.
  const env = { AUDITLINE_KAFKA_BROKERS: 'kafka-1.prod.internal:9092', AUDITLINE_KAFKA_SASL_MECHANISM: 'plain', AUDITLINE_KAFKA_SASL_USERNAME: 'svc', AUDITLINE_KAFKA_SASL_PASSWORD: 'SaslSecret-1' };
  rejects({ ...base, ...producerOptionsFromEnv(env) }, 'ssl', /must be true/);
  assert.equal(resolveProducerOptions({ ...base, ...producerOptionsFromEnv({ ...env, AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS: 'true' }) }).allowPlaintextCredentials, true);
});
