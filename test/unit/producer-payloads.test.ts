import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { isAuditlineError } from '../../core/errors.js';
import { toJsonText } from '../../producers/json-text.js';
import { describeError, PayloadEncoder } from '../../producers/payloads.js';
import { maskString } from '../../core/pii/mask.js';
import { PiiPolicy } from '../../producers/pii.js';
import { capText, fitJson } from '../../producers/truncation.js';

const FIELDS = ['customer_email', 'customer_name', 'phone_number', 'billing_address'];
const KEY = 'unit-test-hmac-key-0123456789';
const hmac = (text: string): string => `hmac-sha256:${createHmac('sha256', KEY).update(text).digest('hex')}`;

/** PII at several depths, in arrays, with a key in other case. */
const deep = () => ({
  order: { id: 7, customer: { customer_email: 'ann@example.com', profile: { phone_number: '+1 555 123 4567' } } },
  lines: [{ sku: 'A1', billing_address: { street: '1 Main Street', city: 'Springfield' } }],
  Customer_Name: 'Ann Smith',
  amount: 12000,
});
const CLEAR = ['ann@example.com', '555 123 4567', '1 Main Street', 'Springfield', 'Ann Smith'];

test('hash mode replaces PII values at any depth with a keyed HMAC, keeping everything else', () => {
  const enc = new PayloadEncoder(new PiiPolicy(FIELDS, 'hash', KEY), 256 * 1024);
  const out = enc.json(deep(), 'input', new Set());
  for (const clear of CLEAR) assert.ok(!out.text.includes(clear), `no cleartext ${clear}`);
  assert.equal(out.piiFound, true);
  const parsed = JSON.parse(out.text);
  assert.deepEqual(parsed.order.customer.customer_email, { $pii: hmac('ann@example.com') });
  assert.deepEqual(parsed.order.customer.profile.phone_number, { $pii: hmac('+1 555 123 4567') });
  assert.deepEqual(parsed.lines[0].billing_address, { $pii: hmac('{"city":"Springfield","street":"1 Main Street"}') }, 'objects hash as canonical JSON');
  assert.deepEqual(parsed.Customer_Name, { $pii: hmac('Ann Smith') }, 'keys match case-insensitively');
  assert.equal(parsed.amount, 12000);
  assert.equal(parsed.lines[0].sku, 'A1');
});

test('mask mode writes display forms at any depth', () => {
  const enc = new PayloadEncoder(new PiiPolicy(FIELDS, 'mask'), 256 * 1024);
  const parsed = JSON.parse(enc.json(deep(), 'input', new Set()).text);
  assert.equal(parsed.order.customer.customer_email, 'a***@example.com');
  assert.equal(parsed.order.customer.profile.phone_number, '***67');
  assert.deepEqual(parsed.lines[0].billing_address, { street: '1*** M*** S***', city: 'S***' });
  assert.equal(parsed.Customer_Name, 'A*** S***');
  assert.equal(maskString(''), '');
});

test('cleartext mode leaves values for the tokenizer but still knows PII was there', () => {
  const enc = new PayloadEncoder(new PiiPolicy(FIELDS, 'cleartext'), 256 * 1024);
  const out = enc.json(deep(), 'input', new Set());
  assert.deepEqual(JSON.parse(out.text), deep());
  assert.equal(out.piiFound, true);
  assert.equal(enc.json({ amount: 1 }, 'input', new Set()).piiFound, false);
});

test('cleartext mode: whether PII was there is decided exactly as by walking every key, without walking payloads that cannot hold one', () => {
  const fields = [...FIELDS, 'kind'];
  const enc = new PayloadEncoder(new PiiPolicy(fields, 'cleartext'), 256 * 1024);
  // Reference: some PII key is written (JSON drops members whose value is undefined or a function).
  const walked = (value: unknown): boolean => {
    let found = false;
    JSON.stringify(value, function (this: unknown, key, v: unknown) {
      if (!Array.isArray(this) && fields.includes(key.toLowerCase()) && v !== undefined && typeof v !== 'function') found = true;
      return v;
    });
    return found;
  };
  const cases: unknown[] = [
    { amount: 1 },
    [{ customer_email: 'a@b.c' }],
    { nested: [{ deeper: { PHONE_NUMBER: 1 } }] },
    { note: 'the customer_email field is empty' },
    ['customer_email'],
    { customer_emails: 1 },
    { 'customer_email\u0000': 1 },
    { '\u212aind': 'Kelvin sign: lower-cases to k' },
    { at: new Date(0), toJSONd: { toJSON: () => ({ customer_name: 'x' }) } },
    { customer_email: undefined, customer_name: () => 'x', amount: 1 },
    { customer_email: undefined, note: 'customer_email' },
    { customer_email: null },
    'customer_name',
    null,
    42,
  ];
  for (const value of cases) {
    const out = enc.json(value, 'input', new Set());
    assert.equal(out.text, JSON.stringify(value), JSON.stringify(value));
    assert.equal(out.piiFound, walked(value), JSON.stringify(value));
  }
});

test('free text of an execution is scrubbed of the PII values its payloads carried', () => {
  for (const mode of ['hash', 'mask'] as const) {
    const enc = new PayloadEncoder(new PiiPolicy(FIELDS, mode, KEY), 256 * 1024);
    const known = new Set<string>();
    enc.json(deep(), 'input', known);
    const { info: err, piiFound } = enc.error(new TypeError('no invoice for Ann Smith (ann@example.com), cc bob@example.org'), known);
    assert.equal(err.type, 'TypeError');
    assert.equal(piiFound, true);
    assert.deepEqual(enc.text('amount=12000 exceeds 10000', known), { text: 'amount=12000 exceeds 10000', piiFound: false });
    for (const clear of ['Ann Smith', 'ann@example.com', 'bob@example.org']) assert.ok(!err.message.includes(clear), `${mode}: ${clear}`);
    assert.match(err.message, /^no invoice for /);
  }
});

test('an oversized payload becomes valid JSON naming the full size and SHA-256', () => {
  const value = { note: 'é"\\'.repeat(20_000), list: Array.from({ length: 500 }, (_, i) => ({ i, s: '😀' })) };
  const full = JSON.stringify(value);
  const max = 4096;
  const { text, truncation } = fitJson(full, max);
  assert.ok(Buffer.byteLength(text) <= max, 'fits');
  assert.ok(Buffer.byteLength(text) > max - 64, 'uses the room it has');
  const parsed = JSON.parse(text);
  assert.equal(parsed.$truncated, true);
  assert.ok(full.startsWith(parsed.preview), 'preview is a prefix of the full JSON');
  assert.deepEqual(truncation, { original_size_bytes: Buffer.byteLength(full), sha256: createHash('sha256').update(full).digest('hex') });
  assert.equal(parsed.original_size_bytes, truncation!.original_size_bytes);
  assert.equal(parsed.sha256, truncation!.sha256);
  assert.deepEqual(fitJson('{"a":1}', max), { text: '{"a":1}', truncation: null });
});

test('the PII mode applies before truncation, so neither the preview nor the hash see cleartext', () => {
  let truncations = 0;
  const enc = new PayloadEncoder(new PiiPolicy(FIELDS, 'hash', KEY), 2048, () => truncations++);
  const rows = Array.from({ length: 200 }, (_, i) => ({ i, customer_email: `user${i}@example.com` }));
  const out = enc.json({ rows }, 'input', new Set());
  assert.ok(out.truncation);
  assert.equal(truncations, 1);
  assert.ok(!out.text.includes('@example.com'));
  const hashedJson = JSON.stringify({ rows: rows.map((r) => ({ i: r.i, customer_email: { $pii: hmac(r.customer_email) } })) });
  assert.equal(out.truncation!.sha256, createHash('sha256').update(hashedJson).digest('hex'));
});

test('values JSON cannot hold are refused with their location, never their content', () => {
  const circular: Record<string, unknown> = { customer_email: 'ann@example.com', nested: { list: [1] } };
  (circular.nested as { list: unknown[] }).list.push(circular);
  assert.throws(
    () => toJsonText(circular, 'step input'),
    (e) => isAuditlineError(e, 'PRODUCER_INVALID_INPUT') && /circular reference at step input\.nested\.list\[1\]/.test(e.message) && !e.message.includes('ann@'),
  );
  assert.throws(
    () => toJsonText({ amounts: { 'ann@example.com': 10n } }, 'input'),
    (e) => isAuditlineError(e, 'PRODUCER_INVALID_INPUT') && /BigInt .* at input\.amounts\[\*\]/.test(e.message) && !e.message.includes('ann@'),
  );
  assert.throws(() => toJsonText(() => 1, 'output'), (e) => isAuditlineError(e, 'PRODUCER_INVALID_INPUT'));
  // JSON writes a Map or a Set as {}: the audit would claim an empty input.
  assert.throws(
    () => toJsonText({ byCustomer: new Map([['ann@example.com', 1]]) }, 'input'),
    (e) => isAuditlineError(e, 'PRODUCER_INVALID_INPUT') && /a Map would be written as \{\} .* at input\.byCustomer/.test(e.message) && !e.message.includes('ann@'),
  );
  assert.throws(() => toJsonText(new Set([1]), 'output', (_k, v) => v), (e) => isAuditlineError(e, 'PRODUCER_INVALID_INPUT') && /a Set would be written as \{\}/.test(e.message));
  const getter = {
    get x(): number {
      throw new TypeError('boom ann@example.com');
    },
  };
  assert.throws(() => toJsonText(getter, 'input'), (e) => isAuditlineError(e, 'PRODUCER_INVALID_INPUT') && /a getter or a proxy threw/.test(e.message) && !e.message.includes('ann@'));
  assert.equal(toJsonText(undefined, 'x'), 'null');
  assert.equal(toJsonText({ at: new Date(0), skip: undefined }, 'x'), '{"at":"1970-01-01T00:00:00.000Z"}');
});

test('errors are described by class or code; free text is capped', () => {
  assert.deepEqual(describeError(new RangeError('r')), { type: 'RangeError', message: 'r' });
  assert.deepEqual(describeError(Object.assign(new Error('gone'), { code: 'ECONNRESET' })), { type: 'ECONNRESET', message: 'gone' });
  assert.deepEqual(describeError({ type: 'Timeout', message: 't' }), { type: 'Timeout', message: 't' });
  assert.deepEqual(describeError('plain'), { type: 'NonErrorThrown', message: 'plain' });
  const capped = capText('x'.repeat(5000), 1024);
  assert.ok(Buffer.byteLength(capped) <= 1024 && capped.endsWith('…[truncated]'));
});
