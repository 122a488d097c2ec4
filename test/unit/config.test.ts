import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { loadEndpoints, LOCAL_DEFAULTS } from '../../core/endpoints.js';
import { boolVar, parseEnv, settingKind, urlVar } from '../../core/env.js';
import { loadServiceRuntimeSettings } from '../../core/service/settings.js';
import { isAuditlineError } from '../../core/errors.js';
import { producerOptionsFromEnv } from '../../producers/env-options.js';
import { loadStackSettings } from '../../infra/local-stack/settings.js';
import { serviceDefs } from '../../infra/local-stack/services.js';

test('with no endpoint set, the local stack defaults apply', () => {
  const e = loadEndpoints({});
  assert.equal(e.usesLocalStack, true);
  assert.deepEqual(e.kafka.brokers, ['127.0.0.1:9092']);
  assert.equal(e.registry.url, LOCAL_DEFAULTS.registryUrl);
  assert.equal(e.clickhouse.database, 'audit');
  assert.equal(e.s3.endpoint, LOCAL_DEFAULTS.s3Endpoint);
  assert.deepEqual(e.s3.credentials, { accessKeyId: LOCAL_DEFAULTS.s3AccessKeyId, secretAccessKey: LOCAL_DEFAULTS.s3SecretAccessKey });
});

test('configured endpoints switch the local stack off and keep the AWS provider chain', () => {
  const e = loadEndpoints({ AUDITLINE_KAFKA_BROKERS: 'k1:9092, k2:9092', AUDITLINE_S3_BUCKET: 'prod-audit' });
  assert.equal(e.usesLocalStack, false);
  assert.deepEqual(e.kafka.brokers, ['k1:9092', 'k2:9092']);
  assert.equal(e.s3.endpoint, undefined);
  assert.equal(e.s3.credentials, undefined);
});

test('a bad setting fails with the variable name and never echoes a secret', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ AUDITLINE_KAFKA_BROKERS: 'no-port' }, /AUDITLINE_KAFKA_BROKERS: must be host:port/],
    [{ AUDITLINE_CLICKHOUSE_URL: 'ftp://x' }, /AUDITLINE_CLICKHOUSE_URL: must be an http/],
    // A URL's credentials would be quoted whole in fetch's and the clients' error messages, and so in logs.
    [{ AUDITLINE_SCHEMA_REGISTRY_URL: 'https://svc:hunter2@registry:8081' }, /AUDITLINE_SCHEMA_REGISTRY_URL: must not carry a user name or password/],
    [{ AUDITLINE_CLICKHOUSE_URL: 'https://default:hunter2@ch:8443' }, /AUDITLINE_CLICKHOUSE_URL: must not carry a user name or password/],
    [{ AUDITLINE_KAFKA_SSL: 'maybe' }, /AUDITLINE_KAFKA_SSL: must be true or false/],
    [{ AUDITLINE_S3_BUCKET: 'Bad_Bucket' }, /AUDITLINE_S3_BUCKET: must be a valid S3 bucket name/],
    [{ AUDITLINE_KAFKA_SASL_MECHANISM: 'plain', AUDITLINE_KAFKA_SASL_PASSWORD: 'hunter2' }, /AUDITLINE_KAFKA_SASL_USERNAME: not set/],
  ];
  for (const [env, message] of cases) {
    assert.throws(
      () => loadEndpoints(env),
      (e) => isAuditlineError(e, 'CONFIG_INVALID') && message.test(e.message) && !e.message.includes('hunter2'),
      JSON.stringify(Object.keys(env)),
    );
  }
});

test('a refused setting is explained in words for a person, and its value is never quoted (a secret in the wrong variable stays out of the logs)', () => {
  const refused = (fn: () => unknown, message: RegExp) =>
    assert.throws(fn, (e) => isAuditlineError(e, 'CONFIG_INVALID') && message.test(e.message) && !e.message.includes('hunter2'), String(message));
  const defaults = { groupId: 'g', sourceTopic: 't', dlqTopic: 'd', fromBeginning: false, batchSize: 100, flushMs: 100, metricsPort: 0 };
  const hotstore = (value: string) => () => loadServiceRuntimeSettings('hotstore', defaults, { AUDITLINE_HOTSTORE_BATCH_SIZE: value });
  // zod said "Invalid input: expected number, received NaN".
  refused(hotstore('hunter2'), /^invalid setting AUDITLINE_HOTSTORE_BATCH_SIZE: must be a whole number$/);
  refused(hotstore('1.5'), /^invalid setting AUDITLINE_HOTSTORE_BATCH_SIZE: must be a whole number$/);
  refused(hotstore('5 000'), /^invalid setting AUDITLINE_HOTSTORE_BATCH_SIZE: must be a whole number$/);
  refused(hotstore('Infinity'), /^invalid setting AUDITLINE_HOTSTORE_BATCH_SIZE: must be a whole number$/);
  refused(hotstore('0'), /^invalid setting AUDITLINE_HOTSTORE_BATCH_SIZE: must be at least 1$/);
  // Number() reads these as 16, 1000, 8 and 10: a typo or another program's notation must not become a setting.
  for (const notDecimal of ['0x10', '1e3', '0o10', '0b1010', '1E2']) {
    refused(hotstore(notDecimal), /^invalid setting AUDITLINE_HOTSTORE_BATCH_SIZE: must be a whole number in decimal digits$/);
  }
  assert.equal(loadServiceRuntimeSettings('hotstore', defaults, { AUDITLINE_HOTSTORE_BATCH_SIZE: ' 0500 ' }).batchSize, 500, 'leading zeros and blanks are decimal');
  assert.equal(parseEnv({ N: z.coerce.number().min(-5).default(1) }, { N: '-2.5' }).N, -2.5);
  assert.equal(parseEnv({ N: z.coerce.number().min(0).default(1) }, { N: '.5' }).N, 0.5);
  refused(() => parseEnv({ N: z.coerce.number().min(0).default(1) }, { N: '5e-1' }), /^invalid setting N: must be a number in decimal digits$/);
  refused(() => parseEnv({ N: z.coerce.number().min(0).default(1) }, { N: '0x1' }), /^invalid setting N: must be a number in decimal digits$/);
  // One reason for a huge number (not the safe-integer range as well).
  refused(hotstore('9'.repeat(60)), /^invalid setting AUDITLINE_HOTSTORE_BATCH_SIZE: must be at most 100000$/);
  refused(() => parseEnv({ N: z.coerce.number().min(0).default(1) }, { N: 'x1' }), /^invalid setting N: must be a number$/);
  refused(() => loadServiceRuntimeSettings('hotstore', defaults, { AUDITLINE_HOTSTORE_LOG_LEVEL: 'hunter2' }), /^invalid setting AUDITLINE_HOTSTORE_LOG_LEVEL: /);
  refused(() => parseEnv({ SSL: boolVar(false) }, { SSL: 'hunter2' }), /^invalid setting SSL: must be true or false$/);
  // Nor a text setting's (a key, a password, a URL with one).
  for (const [shape, value] of [
    [{ S: z.string().refine((v) => v.length === 64, 'must be 64 hex digits') }, 'hunter2-secret'],
    [{ S: urlVar('http://x') }, 'ftp://hunter2-secret'],
    [{ S: z.string().regex(/^\d+$/, 'must be digits').default('1') }, 'hunter2-secret'],
  ] as const) {
    assert.throws(() => parseEnv(shape, { S: value }), (e) => isAuditlineError(e, 'CONFIG_INVALID') && /^invalid setting S: must/.test(e.message) && !e.message.includes('hunter2'));
  }
  assert.equal(settingKind(z.coerce.number().int().default(1)), 'integer');
  assert.equal(settingKind(z.coerce.number().optional()), 'number');
  assert.equal(settingKind(z.enum(['a', 'b']).default('a')), 'enumerated');
  assert.equal(settingKind(boolVar(true)), 'enumerated');
  assert.equal(settingKind(z.string().transform((v) => Number(v))), 'text');
});

test('credentials given in part are refused, by the services and the CLI as by the producer, rather than dropped', () => {
  const remote = { AUDITLINE_KAFKA_BROKERS: 'kafka.internal:9092', AUDITLINE_S3_ENDPOINT: 'https://s3.internal' };
  const cases: [Record<string, string>, string][] = [
    // Without a mechanism the user name and password were ignored: the client connected without authentication.
    [{ AUDITLINE_KAFKA_SASL_USERNAME: 'svc', AUDITLINE_KAFKA_SASL_PASSWORD: 'hunter2' }, 'AUDITLINE_KAFKA_SASL_MECHANISM'],
    [{ AUDITLINE_KAFKA_SASL_MECHANISM: 'scram-sha-512', AUDITLINE_KAFKA_SASL_USERNAME: 'svc' }, 'AUDITLINE_KAFKA_SASL_PASSWORD'],
    // A registry password without its user name was never sent.
    [{ AUDITLINE_SCHEMA_REGISTRY_PASSWORD: 'hunter2' }, 'AUDITLINE_SCHEMA_REGISTRY_USERNAME'],
  ];
  for (const [env, missing] of cases) {
    for (const load of [loadEndpoints, producerOptionsFromEnv]) {
      assert.throws(
        () => load({ ...remote, ...env }),
        (e) => isAuditlineError(e, 'CONFIG_INVALID') && e.details.setting === missing && e.message.startsWith(`invalid setting ${missing}: not set`) && !e.message.includes('hunter2'),
        `${load.name} ${Object.keys(env).join(' ')}`,
      );
    }
  }
  // One S3 key without the other fell back to the AWS provider chain (or, on the local stack, to its keys).
  for (const env of [remote, {}]) {
    for (const [given, missing] of [
      ['AUDITLINE_S3_ACCESS_KEY_ID', 'AUDITLINE_S3_SECRET_ACCESS_KEY'],
      ['AUDITLINE_S3_SECRET_ACCESS_KEY', 'AUDITLINE_S3_ACCESS_KEY_ID'],
    ] as const) {
      assert.throws(
        () => loadEndpoints({ ...env, [given]: 'hunter2' }),
        (e) => isAuditlineError(e, 'CONFIG_INVALID') && e.details.setting === missing && !e.message.includes('hunter2'),
        given,
      );
    }
  }
  const whole = loadEndpoints({
    ...remote,
    AUDITLINE_KAFKA_SSL: 'true',
    AUDITLINE_KAFKA_SASL_MECHANISM: 'plain',
    AUDITLINE_KAFKA_SASL_USERNAME: 'svc',
    AUDITLINE_KAFKA_SASL_PASSWORD: 'pw',
    AUDITLINE_SCHEMA_REGISTRY_USERNAME: 'reg',
    AUDITLINE_S3_ACCESS_KEY_ID: 'ak',
    AUDITLINE_S3_SECRET_ACCESS_KEY: 'sk',
  });
  assert.deepEqual(whole.kafka.sasl, { mechanism: 'plain', username: 'svc', password: 'pw' });
  assert.deepEqual(whole.registry, { url: LOCAL_DEFAULTS.registryUrl, username: 'reg', password: '' }, 'a user name alone sends an empty password, as for the producer');
  assert.deepEqual(whole.s3.credentials, { accessKeyId: 'ak', secretAccessKey: 'sk' });
});

test('credentials that would cross the network unencrypted to a host other than loopback are refused unless AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS=true', () => {
  const sasl = { AUDITLINE_KAFKA_SASL_MECHANISM: 'plain', AUDITLINE_KAFKA_SASL_USERNAME: 'svc', AUDITLINE_KAFKA_SASL_PASSWORD: 'hunter2' };
  const scram = { ...sasl, AUDITLINE_KAFKA_SASL_MECHANISM: 'scram-sha-512' };
  const registryAuth = { AUDITLINE_SCHEMA_REGISTRY_USERNAME: 'svc', AUDITLINE_SCHEMA_REGISTRY_PASSWORD: 'hunter2' };
  const refused: [Record<string, string>, string][] = [
    [{ AUDITLINE_KAFKA_BROKERS: '127.0.0.1:9092,kafka.internal:9092', ...sasl }, 'AUDITLINE_KAFKA_SSL'],
    [{ AUDITLINE_KAFKA_BROKERS: 'kafka.internal:9092', ...scram }, 'AUDITLINE_KAFKA_SSL'],
    [{ AUDITLINE_CLICKHOUSE_URL: 'http://clickhouse.internal:8123', AUDITLINE_CLICKHOUSE_PASSWORD: 'hunter2' }, 'AUDITLINE_CLICKHOUSE_URL'],
    [{ AUDITLINE_SCHEMA_REGISTRY_URL: 'http://10.0.0.7:8081', ...registryAuth }, 'AUDITLINE_SCHEMA_REGISTRY_URL'],
  ];
  for (const [env, setting] of refused) {
    assert.throws(
      () => loadEndpoints(env),
      (e) => isAuditlineError(e, 'CONFIG_INVALID') && e.details.setting === setting && /AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS=true/.test(e.message) && !e.message.includes('hunter2'),
      setting,
    );
    assert.doesNotThrow(() => loadEndpoints({ ...env, AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS: 'true' }), `${setting} with the opt-in`);
  }
  const allowed: Record<string, string>[] = [
    // Loopback (the local stack) and encrypted connections.
    { AUDITLINE_KAFKA_BROKERS: 'localhost:9092,127.0.0.1:19092', ...sasl },
    { AUDITLINE_KAFKA_BROKERS: 'kafka.internal:9092', AUDITLINE_KAFKA_SSL: 'true', ...scram },
    { AUDITLINE_CLICKHOUSE_URL: 'http://[::1]:8123', AUDITLINE_CLICKHOUSE_PASSWORD: 'pw' },
    { AUDITLINE_CLICKHOUSE_URL: 'https://clickhouse.internal:8443', AUDITLINE_CLICKHOUSE_PASSWORD: 'pw' },
    { AUDITLINE_SCHEMA_REGISTRY_URL: 'http://localhost:8081', ...registryAuth },
    { AUDITLINE_SCHEMA_REGISTRY_URL: 'https://registry.internal', ...registryAuth },
    // No secret to expose: ClickHouse without a password, the registry without auth, Kafka without SASL.
    { AUDITLINE_KAFKA_BROKERS: 'kafka:29092', AUDITLINE_SCHEMA_REGISTRY_URL: 'http://schema-registry:8080', AUDITLINE_CLICKHOUSE_URL: 'http://clickhouse:8123', AUDITLINE_CLICKHOUSE_PASSWORD: '' },
  ];
  for (const env of allowed) assert.doesNotThrow(() => loadEndpoints(env), JSON.stringify(env));
  assert.throws(() => loadEndpoints({ AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS: 'perhaps' }), /AUDITLINE_ALLOW_PLAINTEXT_CREDENTIALS: must be true or false/);
});

test('stack settings: defaults, overrides and a bad port named', () => {
  const s = loadStackSettings({ HOME: '/home/x' });
  assert.equal(s.kafka.port, 9092);
  assert.equal(s.kafka.version, '3.9.1');
  assert.equal(s.registry.port, 8081);
  assert.equal(s.clickhouse.port, 8123);
  assert.equal(s.s3.port, 9000);
  const o = loadStackSettings({ AUDITLINE_STACK_KAFKA_PORT: '19092', AUDITLINE_CACHE_DIR: '/tmp/c', AUDITLINE_STACK_DIR: '/tmp/s' });
  assert.equal(o.kafka.port, 19092);
  assert.equal(o.cacheDir, '/tmp/c');
  assert.equal(o.stackDir, '/tmp/s');
  assert.throws(() => loadStackSettings({ AUDITLINE_STACK_S3_PORT: '70000' }), /AUDITLINE_STACK_S3_PORT: must be a port/);
  assert.throws(() => loadStackSettings({ AUDITLINE_STACK_KAFKA_VERSION: '2.8.0' }), /AUDITLINE_STACK_KAFKA_VERSION/);
});

test('with no endpoint set, clients go where the launcher puts the services, also on ports of their own', () => {
  for (const env of [
    {},
    { AUDITLINE_STACK_KAFKA_PORT: '29192', AUDITLINE_STACK_REGISTRY_PORT: '29181', AUDITLINE_STACK_CLICKHOUSE_PORT: '29123', AUDITLINE_STACK_S3_PORT: '29100' },
  ]) {
    const e = loadEndpoints(env);
    const defs = serviceDefs(loadStackSettings({ ...env, AUDITLINE_STACK_DIR: '/tmp/s' }));
    assert.deepEqual(
      [e.kafka.brokers, e.registry.url, e.clickhouse.url, e.s3.endpoint],
      [[defs.kafka.endpoint], defs.registry.endpoint, defs.clickhouse.endpoint, defs.s3.endpoint],
      JSON.stringify(env),
    );
  }
  // A configured endpoint is used as given; the launcher's ports then play no part.
  const configured = loadEndpoints({ AUDITLINE_STACK_KAFKA_PORT: '29192', AUDITLINE_KAFKA_BROKERS: 'k1:9092' });
  assert.deepEqual([configured.usesLocalStack, configured.kafka.brokers], [false, ['k1:9092']]);
  assert.throws(() => loadEndpoints({ AUDITLINE_STACK_S3_PORT: 'x' }), /invalid setting AUDITLINE_STACK_S3_PORT/);
});
