import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditlineError, isAuditlineError } from '../../core/errors.js';
import { backoffDelay, deadLetterMessage, DLQ_HEADERS, loadServiceRuntimeSettings, MAX_REASON_LENGTH, retryRetriable, sleep, StoppedError, type SourceRecord } from '../../core/service/index.js';
import { HOTSTORE_DEFAULTS, loadHotstoreConfig } from '../../consumers/hotstore/config.js';

test('backoff grows exponentially up to the ceiling, with jitter between half and all of it', () => {
  const o = { initialMs: 100, maxMs: 1_000 };
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, o, () => 1)), [100, 200, 400, 800, 1000, 1000]);
  assert.deepEqual([1, 2, 3, 4, 5].map((a) => backoffDelay(a, o, () => 0)), [50, 100, 200, 400, 500]);
  for (let i = 0; i < 100; i++) {
    const d = backoffDelay(3, o);
    assert.ok(d >= 200 && d <= 400, `${d}`);
  }
});

test('retryRetriable retries retriable failures until success, throws others at once, and ends with StoppedError when stopped', async () => {
  let calls = 0;
  const seen: number[] = [];
  const value = await retryRetriable(
    async () => {
      calls += 1;
      if (calls < 3) throw new AuditlineError('CLICKHOUSE_UNAVAILABLE', 'down', { retriable: true });
      return 'ok';
    },
    { backoff: { initialMs: 1, maxMs: 2 }, isRetriable: (e) => isAuditlineError(e) && e.retriable, onRetry: (_e, attempt) => void seen.push(attempt) },
  );
  assert.equal(value, 'ok');
  assert.deepEqual(seen, [1, 2]);

  const fatal = new AuditlineError('STORE_NOT_INITIALIZED', 'no tables');
  await assert.rejects(retryRetriable(async () => Promise.reject(fatal), { backoff: { initialMs: 1, maxMs: 1 }, isRetriable: (e) => isAuditlineError(e) && e.retriable }), (e) => e === fatal);

  const stop = new AbortController();
  const pending = retryRetriable(async () => Promise.reject(new Error('still down')), { backoff: { initialMs: 60_000, maxMs: 60_000 }, signal: stop.signal });
  setTimeout(() => stop.abort(), 10);
  await assert.rejects(pending, (e) => e instanceof StoppedError);
  assert.equal(await sleep(60_000, AbortSignal.abort()), false);

  // Already stopped: no attempt at all, unless the caller asks for the first one (the last step of settled work).
  let attempts = 0;
  const once = async () => {
    attempts += 1;
    return 'sent';
  };
  await assert.rejects(retryRetriable(once, { backoff: { initialMs: 1, maxMs: 1 }, signal: AbortSignal.abort() }), (e) => e instanceof StoppedError);
  assert.equal(attempts, 0);
  assert.equal(await retryRetriable(once, { backoff: { initialMs: 1, maxMs: 1 }, signal: AbortSignal.abort(), firstAttemptWhenStopped: true }), 'sent');
  assert.equal(attempts, 1);
  const failing = retryRetriable(async () => Promise.reject(new Error('DLQ down')), { backoff: { initialMs: 1, maxMs: 1 }, signal: AbortSignal.abort(), firstAttemptWhenStopped: true });
  await assert.rejects(failing, (e) => e instanceof StoppedError, 'a failed first attempt is not retried once stopped');
});

test('service settings: defaults, AUDITLINE_<SERVICE>_* overrides, and a bad value names its variable', () => {
  const s = loadServiceRuntimeSettings('hotstore', HOTSTORE_DEFAULTS, {});
  assert.deepEqual(
    { group: s.groupId, topic: s.sourceTopic, dlq: s.dlqTopic, batch: s.batchSize, flush: s.flushMs, port: s.http.port, retry: s.retry, fromBeginning: s.fromBeginning, unknownSchema: s.unknownSchemaRetryMs },
    { group: 'auditline-hotstore', topic: 'audit.events', dlq: 'audit.dlq', batch: 10000, flush: 250, port: 9464, retry: { initialMs: 500, maxMs: 10_000 }, fromBeginning: true, unknownSchema: 60_000 },
  );
  const o = loadServiceRuntimeSettings('hotstore', HOTSTORE_DEFAULTS, {
    AUDITLINE_HOTSTORE_GROUP_ID: 'hs-2',
    AUDITLINE_HOTSTORE_BATCH_SIZE: '250',
    AUDITLINE_HOTSTORE_FLUSH_MS: '200',
    AUDITLINE_HOTSTORE_METRICS_PORT: '0',
    AUDITLINE_HOTSTORE_FROM_BEGINNING: 'false',
    AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS: '0',
  });
  assert.deepEqual([o.groupId, o.batchSize, o.flushMs, o.http.port, o.fromBeginning, o.unknownSchemaRetryMs], ['hs-2', 250, 200, 0, false, 0]);

  const bad = (env: Record<string, string>, variable: string, reason: RegExp) =>
    assert.throws(() => loadServiceRuntimeSettings('hotstore', HOTSTORE_DEFAULTS, env), (e) => isAuditlineError(e, 'CONFIG_INVALID') && e.message.includes(variable) && reason.test(e.message) && e.details.setting === variable);
  bad({ AUDITLINE_HOTSTORE_BATCH_SIZE: 'many' }, 'AUDITLINE_HOTSTORE_BATCH_SIZE', /integer|number/i);
  bad({ AUDITLINE_HOTSTORE_BATCH_SIZE: '0' }, 'AUDITLINE_HOTSTORE_BATCH_SIZE', /at least 1/);
  bad({ AUDITLINE_HOTSTORE_FLUSH_MS: '5' }, 'AUDITLINE_HOTSTORE_FLUSH_MS', /at least 10/);
  bad({ AUDITLINE_HOTSTORE_METRICS_PORT: '70000' }, 'AUDITLINE_HOTSTORE_METRICS_PORT', /at most 65535/);
  bad({ AUDITLINE_HOTSTORE_GROUP_ID: 'has space' }, 'AUDITLINE_HOTSTORE_GROUP_ID', /A-Z a-z 0-9/);
  bad({ AUDITLINE_HOTSTORE_FROM_BEGINNING: 'maybe' }, 'AUDITLINE_HOTSTORE_FROM_BEGINNING', /true or false/);
  bad({ AUDITLINE_HOTSTORE_RETRY_INITIAL_MS: '5000', AUDITLINE_HOTSTORE_RETRY_MAX_MS: '1000' }, 'AUDITLINE_HOTSTORE_RETRY_MAX_MS', /at least AUDITLINE_HOTSTORE_RETRY_INITIAL_MS/);
  bad({ AUDITLINE_HOTSTORE_LOG_LEVEL: 'loud' }, 'AUDITLINE_HOTSTORE_LOG_LEVEL', /.+/);
  bad({ AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS: '1m' }, 'AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS', /integer|number/i);
  bad({ AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS: '-1' }, 'AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS', /at least 0/);
  bad({ AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS: '86400000' }, 'AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS', /at most 3600000/);
});

test('hot store config: database from the endpoint settings, its own insert timeout validated', () => {
  const c = loadHotstoreConfig({ AUDITLINE_CLICKHOUSE_DATABASE: 'audit_test', AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS: '5000' });
  assert.equal(c.database, 'audit_test');
  assert.equal(c.insertTimeoutMs, 5000);
  assert.equal(c.runtime.service, 'hotstore');
  assert.throws(() => loadHotstoreConfig({ AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS: '90000' }), (e) => isAuditlineError(e, 'CONFIG_INVALID') && /AUDITLINE_HOTSTORE_INSERT_TIMEOUT_MS: must be at most 50000/.test(e.message));
});

test('a dead letter keeps the key, value and headers of its record and adds the DLQ headers', () => {
  const record: SourceRecord = {
    topic: 'audit.events',
    partition: 4,
    offset: '1234',
    key: Buffer.from('exec-1'),
    value: Buffer.from([0xde, 0xad]),
    headers: { origin: 'x', [DLQ_HEADERS.reason]: 'spoofed' },
    timestamp: '0',
  };
  const message = deadLetterMessage({ record, code: 'WIRE_FORMAT_INVALID', reason: 'value is not in the Confluent wire format' }, 'hotstore', new Date(Date.UTC(2026, 0, 2)));
  assert.deepEqual(message.key, record.key);
  assert.deepEqual(message.value, record.value);
  assert.deepEqual(message.headers, {
    origin: 'x',
    'auditline-dlq-reason': 'value is not in the Confluent wire format',
    'auditline-dlq-source-topic': 'audit.events',
    'auditline-dlq-source-partition': '4',
    'auditline-dlq-source-offset': '1234',
    'auditline-dlq-service': 'hotstore',
    'auditline-dlq-error-code': 'WIRE_FORMAT_INVALID',
    'auditline-dlq-time': '2026-01-02T00:00:00.000Z',
  });
  const long = deadLetterMessage({ record, code: 'ROW_REJECTED', reason: 'r'.repeat(2_000) }, 'hotstore');
  assert.equal(String(long.headers![DLQ_HEADERS.reason]).length, MAX_REASON_LENGTH);
});
