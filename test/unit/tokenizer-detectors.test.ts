import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectPii, isPhoneKey, isPhoneNumber } from '../../core/pii/detectors.js';
import { maskString, maskValue } from '../../core/pii/mask.js';

const found = (text: string) => detectPii(text).map((d) => `${d.kind}:${text.slice(d.start, d.end)}`);

test('e-mail addresses are found in free text, with their exact span', () => {
  assert.deepEqual(found('Mail to Ann.Smith+billing@example.co.uk failed: mailbox full'), ['email:Ann.Smith+billing@example.co.uk']);
  assert.deepEqual(found('sent to a@b.io, b@c.de;c@d.org'), ['email:a@b.io', 'email:b@c.de', 'email:c@d.org']);
  assert.deepEqual(found('"customer":"canary-x1@example.com"'), ['email:canary-x1@example.com']);
  assert.deepEqual(found('no mail here: user@localhost, @handle, a@b'), []);
  // Internationalized addresses whole (only the ASCII tail was found: `Anna.Mü` stayed in clear), an apostrophe inside,
  // quotes around, and an address URL-encoded in a logged request.
  assert.deepEqual(found('to Anna.Müller@example.de and anna@müller.de'), ['email:Anna.Müller@example.de', 'email:anna@müller.de']);
  assert.deepEqual(found("to ann.o'neil@example.com, 'bo@example.com'"), ["email:ann.o'neil@example.com", 'email:bo@example.com']);
  assert.deepEqual(found('GET /users?email=ann%40example.com&x=1'), ['email:ann%40example.com']);
  // Other scripts, and CJK text written without blanks around an address: the address alone.
  assert.deepEqual(found('דוד@example.co.il; info@公司.cn; ann@例え.jp'), ['email:דוד@example.co.il', 'email:info@公司.cn', 'email:ann@例え.jp']);
  assert.deepEqual(found('请将发票发送至ann@example.com以便我们处理'), ['email:ann@example.com']);
  assert.deepEqual(found('客户bo@example.com的订单已发货'), ['email:bo@example.com']);
});

test('a JSON key names a phone number by its last word, digits and qualifiers dropped; ids, times, counts and codes do not', () => {
  for (const key of ['phone', 'phoneNumber', 'phone_no', 'mobilePhone', 'PHONE', 'tel', 'msisdn', 'phone1', 'mobile2', 'phones', 'phonenumber', 'phone_home', 'phoneE164', 'phone_number_primary', 'customerPhone', 'contact_tel', 'faxNumber', 'Telefon']) {
    assert.equal(isPhoneKey(key), true, key);
  }
  for (const key of ['phone_verified_at', 'sms_sent_at_ms', 'cell_id', 'tel_aviv_store', 'iphone_order_id', 'smartphone_sku', 'mobile_app_build', 'phone_country_code', 'phone_count', 'telemetry', 'order_no']) {
    assert.equal(isPhoneKey(key), false, key);
  }
});

test('phone numbers in the shapes people write are found', () => {
  assert.deepEqual(found('call +49 30 1234 5678 or (555) 123-4567'), ['phone:+49 30 1234 5678', 'phone:(555) 123-4567']);
  assert.deepEqual(found('backup 555.123.4567, office 030 1234567, mobile 0171-1234567'), ['phone:555.123.4567', 'phone:030 1234567', 'phone:0171-1234567']);
  assert.deepEqual(found('x: +44 (0)20 7946 0958.'), ['phone:+44 (0)20 7946 0958']);
  assert.deepEqual(found('us 1-555-123-4567, 1.555.123.4567; uk (020) 7946 0958'), ['phone:1-555-123-4567', 'phone:1.555.123.4567', 'phone:(020) 7946 0958']);
  assert.deepEqual(found('phone: 5551234567 and tel 4930123456'), ['phone:5551234567', 'phone:4930123456'], 'bare numbers only after a phone word');
});

test('ids, UUIDs, amounts, dates, times, IPs, versions and card-like digits are not phone numbers', () => {
  for (const text of [
    'uuid 123e4567-e89b-12d3-a456-426614174000',
    'amount 12000, total 1,234,567.89, 12000.50 EUR',
    'on 2024-01-15 10:30:00, 01/15/2024, 15.01.2024, 2024/01/15',
    'ip 192.168.100.200, version v1.2.3 or 10.4.12',
    'order ORD-2024-000123, invoice 1234567890, ref 20240115123456',
    'trace 4bf92f3577b34da6a3ce929d0e0e4736, span 00f067aa0ba902b7',
    'Timeout after 30000 ms (attempt 3 of 5), HTTP 504',
    'card 4111 1111 1111 1111',
  ]) {
    assert.deepEqual(found(text), [], text);
  }
});

test('an e-mail address wins over digits inside it; only the selected detectors run', () => {
  assert.deepEqual(found('write to 0301234567@example.com'), ['email:0301234567@example.com']);
  assert.deepEqual(detectPii('a@b.io +49 30 1234 5678', new Set(['phone'])).map((d) => d.kind), ['phone']);
  assert.equal(isPhoneNumber('+1 (555) 123-4567'), true);
  assert.equal(isPhoneNumber('12000'), false);
});

test('masks: e-mail keeps first letter and domain, phones the last two digits, text first letters, structure kept', () => {
  assert.equal(maskString('ann@example.com'), 'a***@example.com');
  assert.equal(maskString('+49 30 1234 5658'), '***58');
  assert.equal(maskString('Ann Smith'), 'A*** S***');
  assert.deepEqual(maskValue({ street: 'Main St 1', zip: 12345, tags: ['x'] }), { street: 'M*** S*** 1***', zip: '***', tags: ['x***'] });
  assert.equal(maskValue(null), null);
});
