import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretKey } from 'node:crypto';
import { newDataKey, TokenKey } from '../../consumers/tokenizer/crypto.js';
import { holdsTokenMark, rewriteTokens, type PiiToken } from '../../consumers/tokenizer/pii-format.js';
import { decideReveal, DEFAULT_REVEAL_POLICY, parseRevealPolicy, reveal } from '../../consumers/tokenizer/reveal.js';
import { SealCache, scanField, sealSlots, type ScanOptions } from '../../consumers/tokenizer/scan.js';
import { scanEvent, sealEvent, subjectInJson } from '../../consumers/tokenizer/tokenize-event.js';
import { FREE_TEXT_FIELDS, scannedFieldPaths } from '../../core/pii/scanned-fields.js';
import { unwrapPayload, type DecisionRecorded, type ExecutionStarted, type StepFinished } from '../../schemas/index.js';
import { MemoryAccessLog, MemoryKeys, piiExecution } from '../helpers/tokenizer-fixtures.js';

const options: ScanOptions = {
  piiFields: new Set(['customer_email', 'customer_name', 'phone_number', 'billing_address']),
  detectors: new Set(['email', 'phone']),
  keyedValuesProtected: false,
};
const tokenKey = new TokenKey(Buffer.alloc(32, 3));
const ctx = () => ({ tokenKey, keyId: 'kTEST', key: createSecretKey(newDataKey()), executionId: 'exec-1' });

/** Every token object in a JSON text, in document order. */
function tokensIn(text: string): PiiToken[] {
  const out: PiiToken[] = [];
  rewriteTokens(text, (t) => void out.push(t));
  return out;
}

/** Scans and seals a text under a new key of `subject` (execution `executionId`), as the tokenizer writes it. */
async function subjectSealer(keys: MemoryKeys, subject: string, executionId: string): Promise<(text: string) => string> {
  const key = (await keys.activeKeys([subject])).get(subject)!;
  return (text) => {
    const scan = scanField(text, options)!;
    sealSlots(scan.slots, { tokenKey, keyId: key.keyId, key: key.key, executionId });
    return scan.render();
  };
}

test('PII keys are tokenized at any depth, whatever their case and type; everything else stays byte-identical in value', () => {
  const input = {
    customer_email: 'ann@example.com',
    nested: { deeper: [{ Customer_Name: 'Ann Smith', keep: 'x' }, { billing_address: { street: 'Main St 1', zip: '10115' } }] },
    phone_number: '+49 30 1234 5678',
    order_id: 'ORD-2024-000123',
    amount: 12000,
    id: '123e4567-e89b-12d3-a456-426614174000',
    empty: { customer_email: null },
    when: '2024-01-15T10:30:00Z',
  };
  const scan = scanField(JSON.stringify(input), options)!;
  assert.equal(scan.slots.length, 4);
  sealSlots(scan.slots, ctx());
  const out = JSON.parse(scan.render()) as Record<string, unknown> & { nested: { deeper: [Record<string, unknown>, Record<string, unknown>] } };
  assert.deepEqual(
    { ...out, customer_email: 'X', phone_number: 'X', nested: { deeper: [{ ...out.nested.deeper[0], Customer_Name: 'X' }, { billing_address: 'X' }] } },
    { ...input, customer_email: 'X', phone_number: 'X', nested: { deeper: [{ Customer_Name: 'X', keep: 'x' }, { billing_address: 'X' }] } },
    'non-PII members keep their values and order',
  );
  const email = (out.customer_email as { $pii: PiiToken }).$pii;
  assert.equal(email.t, tokenKey.token('ann@example.com'));
  assert.equal(email.m, 'a***@example.com');
  assert.equal(email.f, 'customer_email');
  assert.equal(email.k, 'kTEST');
  assert.equal(typeof email.c, 'string', 'the first value carries the bundle');
  assert.equal(email.i, 0);
  const address = (out.nested.deeper[1].billing_address as { $pii: PiiToken }).$pii;
  assert.deepEqual(address.m, { street: 'M*** S*** 1***', zip: '1***' });
  assert.equal(address.c, undefined, 'one AES-GCM bundle per field: later values point into it');
  assert.equal(address.i, 2);
  assert.doesNotMatch(scan.render(), /ann@example\.com|Ann Smith|Main St|1234 5678/);
});

test('JSON is rewritten in place: every occurrence of a duplicated PII key is tokenized, and the bytes around the values stay as written', () => {
  // JSON.parse keeps the last of two equal keys: a scan of the parsed value alone would see only `null` and write the text back as it was.
  const dup = '{"customer_email":"ann@example.com","customer_name":"Ann Smith","customer_email":null,"customer_name":null}';
  const scan = scanField(dup, options)!;
  assert.ok(scan, 'the shadowed values are found');
  assert.deepEqual(scan.slots.map((s) => s.value), ['ann@example.com', 'Ann Smith']);
  sealSlots(scan.slots, ctx());
  const out = scan.render();
  assert.ok(!out.includes('ann@') && !out.includes('Ann Smith'), out);
  assert.match(out, /,"customer_email":null,"customer_name":null\}$/);
  // Integers beyond 2^53, number spellings, blanks and key order survive a rewrite (a parse and stringify would change all four).
  const exact = '{ "order": 12345678901234567890, "price": 1.50, "10": "x", "customer_email" : "bo@example.com" }';
  const exactScan = scanField(exact, options)!;
  sealSlots(exactScan.slots, ctx());
  assert.equal(exactScan.render().replace(/\{"\$pii":\{[^}]*\}\}/, 'T'), '{ "order": 12345678901234567890, "price": 1.50, "10": "x", "customer_email" : T }');
  assert.equal(scanField('{"order": 12345678901234567890, "note": "nothing here"}', options), null, 'no PII: no rewrite at all');
});

test('JSON held in a string (a body passed on as a string, at any depth, or the whole field as a JSON string) is walked as JSON and revealed back exactly', async () => {
  const body = JSON.stringify({ customer_name: 'Ann Smith', billing_address: '1 Main St', inner: JSON.stringify({ phone_number: '+44 20 7946 0958', n: 12345678901234567890n.toString() }) });
  const texts = [JSON.stringify(body), JSON.stringify({ request: body, ok: false }), JSON.stringify([JSON.stringify(body)])];
  const keys = new MemoryKeys();
  const seal = await subjectSealer(keys, 'subject-ann', 'e1');
  for (const text of texts) {
    const sealed = seal(text);
    for (const clear of ['Ann Smith', '1 Main St', '7946']) assert.ok(!sealed.includes(clear), `${clear} left in ${sealed}`);
    assert.equal(tokensIn(sealed).length, 3, 'each value is a token the reader finds');
    assert.ok(holdsTokenMark(sealed), 'the cheap test of readers (reports, alerts) sees the tokens too');
    const revealed = await reveal(
      { principal: 'u-7', purpose: 'INC-1234 reproduce failure', executionId: 'e1', role: 'compliance', status: 'failed', fields: [{ name: 'f', text: sealed }] },
      { keys, log: new MemoryAccessLog() },
    );
    assert.equal(revealed.fields[0]!.text, text, 'reveal gives the text back byte for byte');
  }
});

test('PII key names match whatever their case and separators: customerEmail, Customer-Name, PHONE_NUMBER, in JSON and in text', () => {
  const json = JSON.stringify({ customerEmail: 'ann@example.com', 'Customer-Name': 'Ann Smith', contact: { PHONE_NUMBER: 5551234567, billingAddress: { street: 'Main St 1' } }, customer: 'x' });
  const scan = scanField(json, options)!;
  assert.deepEqual(scan.slots.map((s) => s.field), ['customerEmail', 'Customer-Name', 'PHONE_NUMBER', 'billingAddress']);
  for (const text of ['lookup failed customerName=Ann Smith, order=1', "{ 'customer-name': 'Ann Smith' }", 'CustomerName: Ann Smith']) {
    assert.deepEqual(scanField(text, options)?.slots.map((s) => s.value), ['Ann Smith'], text);
  }
  assert.equal(scanField('{"customer":"x","name":"y","customer_names":"z"}', options), null, 'other names are not PII keys');
  assert.equal(subjectInJson('{"order":{"customerEmail":" Ann@Example.com"}}', { ...options, subjectEmailField: 'customer_email' }), 'email:ann@example.com', 'the subject field too');
});

test('a bare phone number under a phone-like key in JSON is a phone number (as after a phone word in text); other numbers under such keys are not', () => {
  const json = JSON.stringify({ contact: { mobile: 447700900123, phone: '5551234567', customerPhone: '+44 20 7946 0958', fax_no: '030 1234567' }, phone_count: 2, telemetry: 12345678, order_id: 12345678 });
  const scan = scanField(json, options)!;
  assert.deepEqual(scan.slots.map((s) => [s.field, s.value]), [['mobile', 447700900123], ['phone', '5551234567'], ['customerPhone', '+44 20 7946 0958'], ['fax_no', '030 1234567']]);
  sealSlots(scan.slots, ctx());
  const out = scan.render();
  assert.ok(!/447700900123|5551234567|7946|030 1234567/.test(out), out);
  assert.match(out, /"phone_count":2,"telemetry":12345678,"order_id":12345678\}$/);
  // Ids, times and counts under keys that only mention a phone word are left.
  const ids = { phone_verified_at: 1733580000, sms_sent_at_ms: 1733580000123, cell_id: 268435455, tel_aviv_store: 10023456, iphone_order_id: 4412345678, smartphone_sku: 123456789, mobile_app_build: 20241207, mobile_session_id: '887766554433' };
  assert.equal(scanField(JSON.stringify(ids), options), null);
});

test('bare phone numbers in a list under a phone-like key (phones, phone_numbers, mobiles) are phone numbers too, nested lists included; other lists are not', () => {
  const json = JSON.stringify({ phones: [5551234567, '4155550123'], contact: { phone_numbers: ['07700900123', null, ''], mobiles: [[447700900123]] }, order_ids: [12345678, 87654321], phone_count: [2] });
  const scan = scanField(json, options)!;
  assert.ok(scan, 'the numbers are found');
  assert.deepEqual(scan.slots.map((s) => [s.field, s.value]), [['phones', 5551234567], ['phones', '4155550123'], ['phone_numbers', '07700900123'], ['mobiles', 447700900123]]);
  sealSlots(scan.slots, ctx());
  const out = scan.render();
  assert.ok(!/5551234567|4155550123|07700900123|447700900123/.test(out), out);
  assert.match(out, /"order_ids":\[12345678,87654321\],"phone_count":\[2\]\}$/);
  assert.equal(scanField(JSON.stringify({ phone_verified_at: [1733580000], cell_id: [268435455] }), options), null, 'lists of ids and times under keys that only mention a phone word');
});

test('free text: detected e-mail addresses and phone numbers become inline markers; the rest of the text stays', () => {
  const text = 'card of Ann@Example.com declined; call +49 30 1234 5678 after 2024-01-15 (order ORD-2024-000123, 12000 EUR)';
  const scan = scanField(text, options)!;
  assert.deepEqual(scan.slots.map((s) => [s.field, s.value]), [['email', 'Ann@Example.com'], ['phone', '+49 30 1234 5678']]);
  sealSlots(scan.slots, ctx());
  const out = scan.render();
  assert.match(out, /^card of \[\[pii:A\*\*\*@Example\.com\|[A-Za-z0-9_-]+\]\] declined; call \[\[pii:\*\*\*78\|[A-Za-z0-9_-]+\]\] after 2024-01-15 \(order ORD-2024-000123, 12000 EUR\)$/);
  assert.deepEqual(tokensIn(out).map((t) => t.t), [tokenKey.token('ann@example.com'), tokenKey.token('+4930 12345678')]);
  assert.equal(scanField(out, options), null, 'tokenized text is never tokenized again');
  assert.equal(scanField('Timeout after 30000 ms, HTTP 504', options), null, 'no PII: the field is left as it is');
});

test('JSON strings and keys are scanned too; producer-hashed and already tokenized values are left alone', () => {
  const input = JSON.stringify({
    note: 'ping bob@example.org',
    recipients: { 'carol@example.net': 'sent' },
    customer_email: { $pii: `hmac-sha256:${'0123abcd'.repeat(8)}` },
    customer_name: { $pii: { v: 1, t: tokenKey.token('Ann Smith'), f: 'customer_name', k: 'k1', c: 'AAAA', m: 'A*** S***' } },
  });
  const scan = scanField(input, options)!;
  assert.deepEqual(scan.slots.map((s) => s.value), ['bob@example.org', 'carol@example.net']);
  sealSlots(scan.slots, ctx());
  const out = JSON.parse(scan.render()) as Record<string, unknown>;
  assert.deepEqual(out.customer_email, { $pii: `hmac-sha256:${'0123abcd'.repeat(8)}` });
  assert.deepEqual(out.customer_name, { $pii: { v: 1, t: tokenKey.token('Ann Smith'), f: 'customer_name', k: 'k1', c: 'AAAA', m: 'A*** S***' } });
  // Only the shapes the producer and the tokenizer write count as protected: cleartext dressed up as them is tokenized.
  const disguised = scanField(
    JSON.stringify({
      customer_email: { $pii: 'ann@example.com' },
      customer_name: { $pii: { v: 1, t: 'x', f: 'customer_name', k: 'k1', m: 'Ann Smith' } },
      note: `see [[pii:Ann Smith|${Buffer.from('{"v":1}').toString('base64url')}]] or [[pii:bob@example.org|AAAAAAAA]]`,
    }),
    options,
  )!;
  assert.deepEqual(
    disguised.slots.map((s) => [s.field, s.value]),
    [
      ['customer_email', { $pii: 'ann@example.com' }],
      ['customer_name', { $pii: { v: 1, t: 'x', f: 'customer_name', k: 'k1', m: 'Ann Smith' } }],
      ['email', 'bob@example.org'],
    ],
  );
  assert.match(out.note as string, /^ping \[\[pii:b\*\*\*@example\.org\|/);
  assert.match(Object.keys(out.recipients as object)[0]!, /^\[\[pii:c\*\*\*@example\.net\|/);
  const masked = scanField(JSON.stringify({ customer_email: 'a***@example.com', note: 'hi' }), { ...options, keyedValuesProtected: true });
  assert.equal(masked, null, 'in the producer\'s mask mode, values of PII keys are already masked');
});

test('PII keys written as JSON inside text (a truncated preview, an error quoting a body) are found, even when cut off', () => {
  const full = JSON.stringify({ customer_name: 'Ann Smith', billing_address: { street: 'Main St 1', city: 'Berlin' }, phone_number: '030 1234567', customer_email: 'ann@exa' });
  const truncated = JSON.stringify({ $truncated: true, original_size_bytes: 900, sha256: 'ab'.repeat(32), preview: full.slice(0, -3) });
  const scan = scanField(truncated, options)!;
  assert.deepEqual(scan.slots.map((s) => [s.field, s.value]), [
    ['customer_name', 'Ann Smith'],
    ['billing_address', '{"street":"Main St 1","city":"Berlin"}'],
    ['phone_number', '030 1234567'],
    ['customer_email', 'ann@ex'],
  ]);
  sealSlots(scan.slots, ctx());
  const out = scan.render();
  assert.doesNotMatch(out, /Ann Smith|Main St|1234567|ann@ex/);
  assert.equal(JSON.parse(out).original_size_bytes, 900);
  assert.equal(tokensIn(out)[0]!.t, tokenKey.token('Ann Smith'), 'same token as the value anywhere else');
  const message = scanField('400 Bad Request: {"customer_email": "bob@example.org", "amount": 5}', options)!;
  assert.deepEqual(message.slots.map((s) => [s.field, s.value]), [['customer_email', 'bob@example.org']]);
});

test('PII keys in the other ways errors and logs write them (util.inspect, Python repr, key=value) are found too; null-like values and other keys are not', () => {
  const cases: [string, [string, string][]][] = [
    ["ValidationError: { customer_name: 'Bob Jones', phone_number: '5551234567', amount: 12 }", [['customer_name', 'Bob Jones'], ['phone_number', '5551234567']]],
    ["KeyError in {'customer_name': 'Bob Jones', 'order': 'ORD-1'}", [['customer_name', 'Bob Jones']]],
    ['lookup failed customer_name=Bob Jones, order=ORD-1', [['customer_name', 'Bob Jones']]],
    ['GET /customers?billing_address=Main%20St%201&page=2 returned 500', [['billing_address', 'Main%20St%201']]],
    ['phone_number: 5551234567 rejected by the carrier', [['phone_number', '5551234567']]],
    ['Customer_Name = Bob Jones\nretry 2', [['Customer_Name', 'Bob Jones']]],
    // A number is not cut after its first digits: the rest of a spaced phone number, a house number's street.
    ['phone_number: 555 123 4567 rejected', [['phone_number', '555 123 4567']]],
    ['phone_number=020 7946 0958; retry', [['phone_number', '020 7946 0958']]],
    ['phone_number: (555) 123-4567, retry', [['phone_number', '(555) 123-4567']]],
    [String.raw`req={\"customer_name\": \"Ann \\\"The\\\" Smith\"}`, [['customer_name', String.raw`Ann \\\"The\\\" Smith`]]],
    ['billing_address: 221B Baker Street, London', [['billing_address', '221B Baker Street']]],
    ['GET /x?billing_address=12+Rue+de+Rivoli&page=2', [['billing_address', '12+Rue+de+Rivoli']]],
    // Ruby and PHP hashes, a quoted key before an unquoted value, JSON quoted inside a string.
    ['NoMethodError for {:customer_name=>"Bob Jones", :id=>7}', [['customer_name', 'Bob Jones']]],
    ["array('customer_name' => 'Bob Jones')", [['customer_name', 'Bob Jones']]],
    ['"customer_name": Bob Jones', [['customer_name', 'Bob Jones']]],
    ['body="{\\"customer_name\\":\\"Bob Jones\\",\\"n\\":1}" rejected', [['customer_name', 'Bob Jones']]],
    ['log: "{\\\\\\"billing_address\\\\\\":\\\\\\"1 Main St\\\\\\"}"', [['billing_address', '1 Main St']]],
  ];
  for (const [text, expected] of cases) {
    const scan = scanField(text, options);
    assert.ok(scan, text);
    assert.deepEqual(scan.slots.map((s) => [s.field, s.value]), expected, text);
    sealSlots(scan.slots, ctx());
    const out = scan.render();
    for (const [, value] of expected) assert.ok(!out.includes(value), `${value} left in ${out}`);
  }
  for (const text of ['customer_name: null, retry: 3', "{ customer_name: undefined }", 'customer_names are listed', 'order=ORD-1 state=failed']) {
    assert.equal(scanField(text, options), null, text);
  }
});

test('a phone number after a phone word glued to a key (phone_number, phoneNumber, mobile_no) is detected in free text', () => {
  const detectorsOnly: ScanOptions = { ...options, piiFields: new Set() };
  for (const text of ['carrier refused phone_number: 5551234567', 'phoneNumber=+1 555 123 4567 invalid', 'mobile_no 0171 1234567 unreachable', 'customer_phone: 030-1234567']) {
    const scan = scanField(text, detectorsOnly);
    assert.equal(scan?.slots.length, 1, text);
    assert.equal(scan.slots[0]!.field, 'phone', text);
  }
  assert.equal(scanField('order 5551234567 shipped; smartphone model 12345678', detectorsOnly), null, 'digits without a phone word next to them stay');
});

test("in the producer's hash and mask modes only values with the producer's shape are left: other values of PII keys, and keys quoted in text, are tokenized", () => {
  const hashMode: ScanOptions = { ...options, piiFields: new Set([...options.piiFields, 'tax_id']), keyedValuesProtected: true };
  const hash = `[pii:hmac-sha256:${'ab'.repeat(32)}]`;
  const json = JSON.stringify({ customer_email: { $pii: `hmac-sha256:${'cd'.repeat(32)}` }, customer_name: 'B*** J***', tax_id: 'DE123456789', billing_address: { street: 'M*** S*** 1***', city: 'B***' } });
  const scan = scanField(json, hashMode)!;
  assert.deepEqual(scan.slots.map((s) => [s.field, s.value]), [['tax_id', 'DE123456789']], 'a field the producer did not know is tokenized; its hash and masks are left');
  const text = scanField(`upstream said {"customer_name":"Bob Jones","phone_number":"${hash}"} and customer_email: a***@example.com`, hashMode)!;
  assert.deepEqual(text.slots.map((s) => [s.field, s.value]), [['customer_name', 'Bob Jones']]);
});

test('cleartext dressed up as a protected value is scanned: token objects with extra or ill-shaped members, masks with a second @ or no domain, masked objects keyed by data', () => {
  const t = 'A'.repeat(43);
  const forged = [
    // Extra members, cleartext in f or k: no token (its members are scanned like any JSON; a name is found under a PII key).
    [{ note: { $pii: { v: 1, t, f: 'x', k: 'k', m: 'x***', customer_name: 'Ann Smith' } } }, 'Ann Smith'],
    [{ note: { $pii: { v: 1, t, f: 'ann@example.com', k: 'k' } } }, 'ann@'],
    [{ note: { $pii: { v: 1, t, f: 'x', k: 'call +44 20 7946 0958' } } }, '7946'],
  ] as const;
  for (const [value, clear] of forged) {
    const scan = scanField(JSON.stringify(value), options);
    assert.ok(scan, JSON.stringify(value));
    sealSlots(scan.slots, ctx());
    assert.ok(!scan.render().includes(clear), scan.render());
  }
  // A key written twice: the parsed check sees only the last (protected-looking) one; the first is cleartext.
  const hash = `hmac-sha256:${'ab'.repeat(32)}`;
  const token = { v: 1, t, f: 'x', k: 'k', m: 'x***' };
  for (const text of [
    `{"customer_email":{"$pii":"ann@example.com","$pii":${JSON.stringify(token)}}}`,
    `{"x":{"$pii":{"note":"call +44 20 7946 0958"},"$pii":"${hash}"}}`,
    `{"note":{"$pii":{"v":1,"t":"${t}","f":"ann@example.com","f":"x","k":"k"}}}`,
  ]) {
    const scan = scanField(text, options);
    assert.ok(scan, text);
    sealSlots(scan.slots, ctx());
    assert.ok(!/ann@|7946/.test(scan.render()), scan.render());
  }
  const dupMask = scanField('{"billing_address":{"street":"221B Baker Street","street":"2*** B*** S***"}}', { ...options, keyedValuesProtected: true });
  assert.equal(dupMask?.slots.length, 1, 'a mask-shaped object with a key twice is tokenized whole');
  // A token as the tokenizer writes it is still left alone.
  const real = JSON.stringify({ note: { $pii: { v: 1, t, m: 'a***@example.com', f: 'customer_email', k: 'kq3VxT0aB1cD2eF3g', c: 'AAAA+/==', i: 0 } } });
  assert.equal(scanField(real, options), null);

  const maskMode: ScanOptions = { ...options, keyedValuesProtected: true };
  for (const value of ['a***@ann.smith@example.com', 'x***@+447700900123', { 'ann@example.com': null }, { '1 Main St, Springfield': 'x***' }]) {
    const scan = scanField(JSON.stringify({ customer_email: value }), maskMode);
    assert.ok(scan && scan.slots.length === 1, `${JSON.stringify(value)} is no mask: tokenized`);
  }
  assert.equal(scanField(JSON.stringify({ customer_email: 'a***@example.co.uk', billing_address: { street: 'M*** S***', zip_code: '***' } }), maskMode), null, "the producer's masks are left");
  // The tokenizer's own mask of an object keyed by data does not keep the key.
  const keyed = scanField(JSON.stringify({ customer_email: { 'ann@example.com': { verified: true } } }), options)!;
  sealSlots(keyed.slots, ctx());
  assert.ok(!keyed.render().includes('ann@'), keyed.render());
});

test('an event: every pii-tagged field of every kind is tokenized; the subject comes from the ExecutionStarted input', async () => {
  const events = piiExecution({ email: 'Dora@Example.com', status: 'failed' });
  const paths = scannedFieldPaths();
  assert.deepEqual(paths.get('StepFinished')!.map((p) => p.join('.')).sort(), ['error', 'error.message', 'error.type', 'input_data', 'output_data', 'step_name']);
  const policy = { piiFields: options.piiFields, detectors: options.detectors, subjectEmailField: 'customer_email' };
  const keys = new MemoryKeys();
  const scans = events.map((e) => scanEvent(e, {}, policy, paths));
  assert.equal(scans[0]!.ownSubject, 'email:dora@example.com');
  assert.equal(scans[1]!.ownSubject, 'email:dora@example.com', 'a later event names the subject by its own customer_email key');
  assert.deepEqual(scans.map((s) => s.values), [4, 4, 2, 0], 'the decision: its reason and its condition');
  const key = (await keys.activeKeys(['s1'])).get('s1')!;
  for (const s of scans) sealEvent(s, { tokenKey, keyId: key.keyId, key: key.key });
  const text = JSON.stringify(events);
  assert.doesNotMatch(text, /dora@example\.com|Canaryname|Canarystreet|5550 1234/i);
  assert.match(text, /ORD-2024-000123/);
  const step = unwrapPayload(events[1]!.payload).value as StepFinished;
  assert.match(step.error!.message, /^card of \[\[pii:D\*\*\*@Example\.com\|/);
  assert.equal(step.error!.type, 'PaymentError', 'a free-text field without PII is untouched');
  const started = unwrapPayload(events[0]!.payload).value as ExecutionStarted;
  assert.equal(JSON.parse(started.input).amount, 12000);

  // A truncated input names its subject only in the preview text (a cut JSON prefix): found there all the same, so
  // `erase --email` reaches the execution.
  const [big] = piiExecution({ email: 'Eve@Example.com' });
  const input = unwrapPayload(big!.payload).value as ExecutionStarted;
  input.input = JSON.stringify({ $truncated: true, original_size_bytes: 300_000, sha256: 'ab'.repeat(32), preview: input.input.slice(0, 60) });
  assert.match(input.input, /customer_email/);
  assert.equal(scanEvent(big!, {}, policy, paths).ownSubject, 'email:eve@example.com');
  // Cut inside the address: it names nobody (not `email:eve@ex`), the execution gets its own subject.
  for (const preview of ['{"customer_email":"Eve@Ex', '{"customer_email":"eve@mail.example.co']) {
    input.input = JSON.stringify({ $truncated: true, original_size_bytes: 300_000, sha256: 'ab'.repeat(32), preview });
    assert.equal(scanEvent(big!, {}, policy, paths).ownSubject, undefined, preview);
  }
});

test('an e-mail field that holds no address (n/a, unknown, a producer mask) names no subject: it would make one key of many customers that no erase --email reaches', () => {
  const policy = { piiFields: options.piiFields, detectors: options.detectors, subjectEmailField: 'customer_email', subjectIdField: 'customer_id' };
  const email = { ...policy, subjectIdField: undefined };
  for (const value of ['n/a', 'unknown', 'a***@example.com', 'A*** S***', 42, { address: 'x' }]) {
    assert.equal(subjectInJson(JSON.stringify({ customer_email: value, note: 'contact ann@example.com' }), email), undefined, JSON.stringify(value));
  }
  assert.equal(subjectInJson('{"customer_email":"n/a","billing":{"customer_email":"Ann@Example.com"}}', email), 'email:ann@example.com', 'a later field that holds an address');
  const hash = `hmac-sha256:${'ab'.repeat(32)}`;
  assert.equal(subjectInJson(JSON.stringify({ customer_email: { $pii: hash } }), email), `hashed:${hash}`, 'the producer hash of an address');
  assert.equal(subjectInJson('{"customer_id":"***","customer_email":"ann@example.com"}', policy), 'email:ann@example.com', 'a masked id names nobody');
  assert.equal(subjectInJson('{"customer_id":"C-42","customer_email":"ann@example.com"}', policy), 'id:C-42');
  // The producer in mask mode: the ExecutionStarted input carries the mask; the event gets no subject from it.
  const [started] = piiExecution({ email: 'ann@example.com' });
  const value = unwrapPayload(started!.payload).value as ExecutionStarted;
  value.input = JSON.stringify({ customer_email: 'a***@example.com', note: 'contact ann@example.com' });
  assert.equal(scanEvent(started!, { 'auditline-pii-mode': 'mask' }, email, scannedFieldPaths()).ownSubject, undefined);
});

test('free-text sox fields (step names, branch conditions, error types) are scanned too: PII in them becomes a token, ids and the actor stay', async () => {
  const events = piiExecution({ email: 'fay@example.com', status: 'failed' });
  const started = unwrapPayload(events[0]!.payload).value as ExecutionStarted;
  started.workflow_name = 'refund for fay@example.com';
  started.triggered_by = { kind: 'user', id: 'ops-7' };
  const step = unwrapPayload(events[1]!.payload).value as StepFinished;
  step.step_name = 'notify fay@example.com';
  step.error = { type: 'RejectedPhone(+49 30 1234 5678)', message: 'no PII here' };
  const decision = unwrapPayload(events[2]!.payload).value as DecisionRecorded;
  decision.branch_condition = 'customer_name == "Fay Canary" && amount > 100 || input.customer_name == "Fay Canary"';
  decision.branch_taken = 'manual_review';
  const policy = { piiFields: options.piiFields, detectors: options.detectors, subjectEmailField: 'customer_email' };
  const key = (await new MemoryKeys().activeKeys(['s1'])).get('s1')!;
  for (const e of events) sealEvent(scanEvent(e, {}, policy, scannedFieldPaths()), { tokenKey, keyId: key.keyId, key: key.key });
  const text = JSON.stringify(events);
  assert.doesNotMatch(text, /fay@example\.com|Fay Canary|1234 5678/i);
  assert.match(started.workflow_name, /^refund for \[\[pii:f\*\*\*@example\.com\|/);
  assert.match(step.step_name, /^notify \[\[pii:/);
  assert.match(step.error!.type, /^RejectedPhone\(\[\[pii:/);
  assert.match(decision.branch_condition, /^customer_name == "\[\[pii:[^|]+\|[^\]]+\]\]" && amount > 100 \|\| input\.customer_name == "\[\[pii:[^|]+\|[^\]]+\]\]"$/, 'the compared value, not the operator, is tokenized; also after a dotted path');
  assert.equal(decision.branch_taken, 'manual_review');
  assert.equal(started.triggered_by.id, 'ops-7');
  // The name's token equals the token of the same e-mail in the input: one search finds both.
  const inputToken = tokensIn(started.input).find((t) => t.f === 'customer_email')!.t;
  assert.deepEqual(tokensIn(step.step_name).map((t) => [t.f, t.t]), [['email', inputToken]]);
});

test('a PII key in a condition: subscript forms and in-lists tokenize each compared value, not the operator or the brackets', async () => {
  const seal = await subjectSealer(new MemoryKeys(), 's-in', 'e-in');
  const cases: [string, RegExp, string[]][] = [
    [`payload["customer_name"] == "Fay Canary" && amount > 1`, /^payload\["customer_name"\] == "\[\[pii:[^\]]+\]\]" && amount > 1$/, ['Fay Canary']],
    [`input['Customer_Name'] != 'Fay Canary'`, /^input\['Customer_Name'\] != '\[\[pii:[^\]]+\]\]'$/, ['Fay Canary']],
    [`customer_name in ("Fay Canary", 'Gus Canary')`, /^customer_name in \("\[\[pii:[^\]]+\]\]", '\[\[pii:[^\]]+\]\]'\)$/, ['Fay Canary', 'Gus Canary']],
    [`input.customer_name NOT IN ['Fay Canary'] or x`, /^input\.customer_name NOT IN \['\[\[pii:[^\]]+\]\]'\] or x$/, ['Fay Canary']],
    [`customer_name in [Fay Canary, null]`, /^customer_name in \[\[\[pii:[^\]]+\]\], null\]$/, ['Fay Canary']],
    [`input["customer_name"] in ("Fay Canary", "Gus Canary")`, /^input\["customer_name"\] in \("\[\[pii:[^\]]+\]\]", "\[\[pii:[^\]]+\]\]"\)$/, ['Fay Canary', 'Gus Canary']],
    [`"customer_name" in ['Fay Canary']`, /^"customer_name" in \['\[\[pii:[^\]]+\]\]'\]$/, ['Fay Canary']],
    // Nested lists, and an unquoted item with brackets of its own: every item to the list's own closing bracket.
    [`customer_name in (("Fay Canary", "Gus Canary"), ("Hal Canary")) and y`, /^customer_name in \(\("\[\[pii:[^\]]+\]\]", "\[\[pii:[^\]]+\]\]"\), \("\[\[pii:[^\]]+\]\]"\)\) and y$/, ['Fay Canary', 'Gus Canary', 'Hal Canary']],
    [`customer_name in (Fay Canary (vip), Gus Canary)`, /^customer_name in \(\[\[pii:[^\]]+\]\] \(\[\[pii:[^\]]+\]\]\), \[\[pii:[^\]]+\]\]\)$/, ['Fay Canary', 'vip', 'Gus Canary']],
    // Cut off mid-value (a truncated preview): the rest of the text is the value.
    [`customer_name in ("Fay Canary`, /^customer_name in \("\[\[pii:[^\]]+\]\]$/, ['Fay Canary']],
  ];
  for (const [text, shape, values] of cases) {
    const out = seal(text);
    assert.match(out, shape, text);
    for (const v of values) assert.ok(!out.includes(v), `${text}: ${v} left in clear`);
    assert.deepEqual(tokensIn(out).map((t) => t.f.toLowerCase()), values.map(() => 'customer_name'), text);
    assert.deepEqual(tokensIn(out).map((t) => t.t), values.map((v) => tokenKey.token(v)), `${text}: each value's own token`);
  }
  assert.equal(scanField('customer_name in the form was empty', options), null, '"in" without a list is prose');
  assert.equal(scanField('order_id in (1, 2)', options), null, 'a list of another key is left');
});

test('every free-text field is a string field of the schema outside the pii class', () => {
  for (const path of FREE_TEXT_FIELDS) {
    const [, kind, ...rest] = path.split('.');
    assert.ok(scannedFieldPaths().get(kind as 'StepFinished')!.some((p) => p.join('.') === rest.join('.')), path);
  }
});

test('reveal: policy by role and status, every attempt logged, cleartext restored exactly, erased keys leave tokens', async () => {
  assert.deepEqual(parseRevealPolicy('engineering:failed|partial, compliance:any'), { engineering: ['failed', 'partial'], compliance: 'any' });
  assert.throws(() => parseRevealPolicy('engineering'), /AUDITLINE_REVEAL_POLICY/);
  // Appended to widen or narrow: the policy would be whichever entry came last.
  assert.throws(() => parseRevealPolicy('engineering:failed,compliance:any,engineering:any'), /AUDITLINE_REVEAL_POLICY: role engineering is named twice/);
  assert.throws(() => parseRevealPolicy('engineering:faild'), /"faild" is not an execution status \(success, failed, partial, unknown, running, conflicting, or any\)/);
  const base = { principal: 'u-7', purpose: 'INC-1234 reproduce failure', executionId: 'e1' };
  assert.deepEqual(decideReveal(DEFAULT_REVEAL_POLICY, { ...base, role: 'engineering', status: 'failed' }), { allowed: true });
  assert.match((decideReveal(DEFAULT_REVEAL_POLICY, { ...base, role: 'engineering', status: 'success' }) as { reason: string }).reason, /only FAILED executions; execution e1 is success/);
  assert.match((decideReveal(DEFAULT_REVEAL_POLICY, { ...base, role: 'marketing', status: 'failed' }) as { reason: string }).reason, /role "marketing" may not reveal/);
  assert.match((decideReveal(DEFAULT_REVEAL_POLICY, { ...base, purpose: 'x', role: 'legal', status: 'failed' }) as { reason: string }).reason, /reason of at least 8/);

  const input = JSON.stringify({ customer_email: 'eve@example.com', nested: { billing_address: { street: 'Main St 1' } }, amount: 5 });
  const message = 'card of eve@example.com declined; call +49 30 1234 5678';
  const keys = new MemoryKeys();
  const seal = await subjectSealer(keys, 'subject-eve', 'e1');
  const fields = [
    { name: 'execution.input', text: seal(input) },
    { name: 'step[1].attempt[1].error_message', text: seal(message) },
  ];
  const log = new MemoryAccessLog();
  const allowed = await reveal({ ...base, role: 'engineering', status: 'failed', fields }, { keys, log });
  assert.equal(allowed.outcome, 'allowed');
  assert.deepEqual(JSON.parse(allowed.fields[0]!.text), JSON.parse(input));
  assert.equal(allowed.fields[1]!.text, message);
  assert.deepEqual(allowed.fields.map((f) => [f.revealed, f.unrecoverable]), [[2, 0], [2, 0]]);

  const refused = await reveal({ ...base, role: 'engineering', status: 'success', fields }, { keys, log });
  assert.equal(refused.outcome, 'refused');
  assert.deepEqual(refused.fields, []);

  // An address pasted as the id of no execution: kept in the access record (years, under Object Lock) only masked.
  const pasted = new MemoryAccessLog();
  const unknownId = await reveal({ ...base, executionId: 'eve@example.com', role: 'legal', status: undefined, fields: [] }, { keys, log: pasted });
  assert.equal(unknownId.unknownExecution, true);
  assert.deepEqual(pasted.records.map((r) => [r.executionId, r.detail]), [['e***@example.com', 'execution e***@example.com is not in the hot store']]);

  // Keys stored but wrapped by a master key this caller does not have: said so, not "erased or expired".
  const otherMaster = { keysById: async (_ids: readonly string[], notConfigured?: (id: string) => void) => (notConfigured?.('mk-old'), new Map()) };
  const wrongMaster = await reveal({ ...base, role: 'legal', status: 'success', fields }, { keys: otherMaster, log: new MemoryAccessLog() });
  assert.equal(wrongMaster.outcome, 'unrecoverable');
  assert.match(wrongMaster.reason!, /wrapped by master key mk-old, which is not configured/);

  const moved = await reveal({ ...base, executionId: 'e2', role: 'legal', status: 'success', fields }, { keys, log });
  assert.equal(moved.outcome, 'unrecoverable', 'ciphertext bound to its execution');

  keys.erase('subject-eve');
  const erased = await reveal({ ...base, role: 'compliance', status: 'success', fields }, { keys, log });
  assert.equal(erased.outcome, 'unrecoverable');
  assert.equal(erased.fields[0]!.text, fields[0]!.text, 'tokens stay when the key is gone');
  assert.deepEqual(
    log.records.map((r) => [r.role, r.executionStatus, r.outcome, r.valuesRevealed, r.valuesUnrecoverable]),
    [
      ['engineering', 'failed', 'allowed', 4, 0],
      ['engineering', 'success', 'refused', 0, 0],
      ['legal', 'success', 'unrecoverable', 0, 4],
      ['compliance', 'success', 'unrecoverable', 0, 4],
    ],
  );
  assert.deepEqual(log.records[0]!.fields, ['execution.input', 'step[1].attempt[1].error_message']);
  assert.match(log.records[1]!.detail, /only FAILED/);
});

test('reveal finds every token the tokenizer stored: a key with blanks (now a PII key by its name), and masks of objects keyed by text written before masks hid such keys', async () => {
  const keys = new MemoryKeys();
  const seal = await subjectSealer(keys, 'subject-cy', 'e1');
  const input = '{"Customer Email": "cy@example.com", "n": 1}';
  const sealed = seal(input);
  assert.ok(!sealed.includes('cy@'), sealed);
  assert.equal(scanField(sealed, options), null, 'tokenizing twice changes nothing');
  const legacy = JSON.stringify({ billing_address: { $pii: { ...tokensIn(sealed)[0]!, f: 'billing_address', m: { 'Street Address': 'M*** S***' } } } });
  assert.equal(tokensIn(legacy).length, 1);
  const base = { principal: 'u-7', purpose: 'INC-1234 reproduce failure', executionId: 'e1', role: 'compliance', status: 'failed' };
  const out = await reveal({ ...base, fields: [{ name: 'execution.input', text: sealed }] }, { keys, log: new MemoryAccessLog() });
  assert.equal(out.fields[0]!.text, input);
  // Large fields: the first token carries the ciphertext of all 400 values (tens of KB), in JSON and inline.
  const many = JSON.stringify({ customers: Array.from({ length: 200 }, (_, i) => ({ customer_email: `c${i}@example.com`, customer_name: `Name ${i}` })) });
  const prose = Array.from({ length: 300 }, (_, i) => `a${i}@example.com`).join(' ');
  const both = await reveal({ ...base, fields: [{ name: 'execution.input', text: seal(many) }, { name: 'step[1].attempt[1].error_message', text: seal(prose) }] }, { keys, log: new MemoryAccessLog() });
  assert.deepEqual([both.outcome, both.fields[0]!.text === many, both.fields[1]!.text === prose], ['allowed', true, true]);
});

test('reveal: tokenized text fed back into a field with new PII under the same key reveals each value from its own bundle; tokens without a bundle id still reveal', async () => {
  const keys = new MemoryKeys();
  const seal = await subjectSealer(keys, 'subject-gus', 'e1');
  const earlier = seal(JSON.stringify({ customer_email: 'gus@example.com', customer_name: 'Gus Old' }));
  // A later step of the same execution gets the stored (tokenized) record back as part of its input.
  const later = seal(JSON.stringify({ previous: JSON.parse(earlier), customer_email: 'gus.new@example.com', customer_name: 'Gus New' }));
  assert.equal(tokensIn(later).filter((t) => t.c !== undefined).length, 2, 'two bundles under one key in one field');
  const base = { principal: 'u-7', purpose: 'INC-1234 reproduce failure', executionId: 'e1', role: 'compliance', status: 'success' };
  const out = await reveal({ ...base, fields: [{ name: 'execution.input', text: later }] }, { keys, log: new MemoryAccessLog() });
  assert.deepEqual(JSON.parse(out.fields[0]!.text), { previous: { customer_email: 'gus@example.com', customer_name: 'Gus Old' }, customer_email: 'gus.new@example.com', customer_name: 'Gus New' });

  // Tokens written before bundle ids existed: the key's first bundle.
  const legacy = rewriteTokens(earlier, (t) => {
    const { b: _b, ...rest } = t;
    return { replace: { $pii: rest } };
  });
  assert.doesNotMatch(legacy, /"b":/);
  const old = await reveal({ ...base, fields: [{ name: 'execution.input', text: legacy }] }, { keys, log: new MemoryAccessLog() });
  assert.deepEqual(JSON.parse(old.fields[0]!.text), { customer_email: 'gus@example.com', customer_name: 'Gus Old' });
});

test('the seal cache gives every value the token and mask it gets without the cache; objects share one entry whatever their key order', () => {
  const text = (address: unknown) =>
    JSON.stringify({ customer_email: 'Ann@Example.com', phone_number: 4930123456, billing_address: address, note: 'call +49 30 1234 5678' });
  const uncached = scanField(text({ street: 'Main St 1', zip: '10115' }), options)!;
  sealSlots(uncached.slots, ctx());
  const cache = new SealCache();
  const first = scanField(text({ street: 'Main St 1', zip: '10115' }), options)!;
  sealSlots(first.slots, { ...ctx(), cache });
  const reordered = scanField(text({ zip: '10115', street: 'Main St 1' }), options)!;
  sealSlots(reordered.slots, { ...ctx(), cache });
  const view = (slots: typeof uncached.slots) => slots.map((s) => [s.field, s.token!.t, JSON.stringify(s.mask)]);
  assert.equal(uncached.slots.length, 4);
  assert.deepEqual(view(first.slots), view(uncached.slots));
  assert.deepEqual(view(reordered.slots), view(uncached.slots));
  assert.deepEqual(first.slots[2]!.mask, { street: 'M*** S*** 1***', zip: '1***' });
  // A different address is a different entry.
  const other = scanField(text({ street: 'Main St 2', zip: '10115' }), options)!;
  sealSlots(other.slots, { ...ctx(), cache });
  assert.notEqual(other.slots[2]!.token!.t, first.slots[2]!.token!.t);
});
