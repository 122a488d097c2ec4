import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, REDACTED } from '../../core/logger.js';

/** A logger whose lines land in an array, as the services' loggers are built. */
function capture(piiFields?: readonly string[]) {
  const lines: string[] = [];
  const destination = new Writable({ write: (chunk: Buffer, _enc, done) => done(void lines.push(chunk.toString())) });
  return { log: createLogger('redaction-test', 'info', { destination, ...(piiFields ? { piiFields } : {}) }), lines };
}

/** A sensitive key and a cleartext value no other field of the line contains. */
const SENSITIVE: [string, unknown][] = [
  ['customer_email', 'ann.secret@example.com'],
  ['customerEmail', 'camel.secret@example.com'],
  ['customer_name', 'Ann Cleartextname'],
  ['phone_number', '+44 7700 900123'],
  ['billing_address', { street: '1 Cleartext Road', city: 'Leeds-cleartext' }],
  ['email', 'subject.secret@example.com'],
  ['branch_reason', 'reason-cleartext'],
  ['condition_values', { amount: 'amount-cleartext' }],
  ['input', { note: 'input-cleartext' }],
  ['output', { note: 'output-cleartext' }],
  ['input_data', 'input-data-cleartext'],
  ['output_data', 'output-data-cleartext'],
  ['payload', { ExecutionStarted: { input: 'payload-cleartext' } }],
  ['event', { payload: 'event-cleartext' }],
  ['value', 'kafka-value-cleartext'],
  ['password', 'pw-cleartext'],
  ['secret', 'webhook-secret-cleartext'],
  ['secretAccessKey', 's3-secret-cleartext'],
  ['s3SecretAccessKey', 's3-env-secret-cleartext'],
  ['token', 'reveal-token-cleartext'],
  ['masterKey', 'master-key-cleartext'],
  ['previousMasterKeys', ['previous-key-cleartext']],
  ['tokenKey', 'token-key-cleartext'],
  ['signingKey', 'signing-key-cleartext'],
  ['piiHashKey', 'hash-key-cleartext'],
  ['credentials', { accessKeyId: 'id-cleartext', secretAccessKey: 's3-nested-cleartext' }],
  ['sasl', { mechanism: 'plain', username: 'u', password: 'sasl-pw-cleartext' }],
];

const cleartexts = (value: unknown): string[] =>
  typeof value === 'string' ? [value] : Array.isArray(value) ? value.flatMap(cleartexts) : typeof value === 'object' && value ? Object.values(value).flatMap(cleartexts) : [];

/** `{ [key]: value }` nested under `depth` plain objects, next to fields that must stay readable. */
function nested(key: string, value: unknown, depth: number): Record<string, unknown> {
  let obj: Record<string, unknown> = { [key]: value, partition: 7, topic: 'visible-topic' };
  for (let d = 0; d < depth; d++) obj = { [`level${depth - d}`]: obj, offset: '42' };
  return obj;
}

for (const depth of [0, 1, 2, 3]) {
  test(`a sensitive key at depth ${depth} is censored and the fields next to it are not`, () => {
    const { log, lines } = capture();
    for (const [key, value] of SENSITIVE) log.info(nested(key, value, depth), `logged ${key}`);
    assert.equal(lines.length, SENSITIVE.length);
    SENSITIVE.forEach(([key, value], i) => {
      const line = lines[i]!;
      for (const text of cleartexts(value)) assert.ok(!line.includes(text), `${key} at depth ${depth} printed ${text}: ${line}`);
      let obj = JSON.parse(line) as Record<string, unknown>;
      assert.equal(obj.msg, `logged ${key}`);
      for (let d = 1; d <= depth; d++) {
        assert.equal(obj.offset, '42');
        obj = obj[`level${d}`] as Record<string, unknown>;
      }
      assert.equal(obj[key], REDACTED, `${key} at depth ${depth}: ${line}`);
      assert.equal(obj.partition, 7);
      assert.equal(obj.topic, 'visible-topic');
    });
  });
}

test('inside arrays, in child bindings and for configured PII fields alike', () => {
  const { log, lines } = capture(['loyalty_number']);
  log.info({ rows: [{ customer_email: 'array-cleartext@example.com', id: 'row-1' }] });
  log.child({ ctx: { password: 'binding-cleartext' }, component: 'visible-component' }).info('child line');
  log.child({ a: 1 }).child({ token: 'grandchild-cleartext' }).info('grandchild line');
  log.info({ deep: { loyaltyNumber: 'LN-cleartext-123', plan: 'gold' } });
  const text = lines.join('');
  for (const cleartext of ['array-cleartext@example.com', 'binding-cleartext', 'grandchild-cleartext', 'LN-cleartext-123']) assert.ok(!text.includes(cleartext), text);
  for (const visible of ['row-1', 'visible-component', 'gold']) assert.ok(text.includes(visible), text);
});

test('the logged object is not changed, and what is not sensitive is printed as it was', () => {
  const { log, lines } = capture();
  const obj = { partition: 3, err: 'boom', where: { topic: 't', input: { a: 1 } }, when: new Date(0) };
  log.warn(obj, 'line');
  assert.deepEqual(obj.where.input, { a: 1 });
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.deepEqual(line.where, { topic: 't', input: REDACTED });
  assert.equal(line.err, 'boom');
  assert.equal(line.when, new Date(0).toISOString());
});
