import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSecretKey, randomBytes } from 'node:crypto';
import { isAuditlineError } from '../../core/errors.js';
import { newDataKey, open, openValues, piiAad, seal, sealValues, TokenKey } from '../../consumers/tokenizer/crypto.js';
import { LocalKeyWrapper } from '../../consumers/tokenizer/key-wrapper.js';
import { subjectIdsOf } from '../../consumers/tokenizer/erasure.js';
import { subjectId, subjectInJson } from '../../consumers/tokenizer/tokenize-event.js';
import { PiiPolicy } from '../../producers/pii.js';
import { producerOptionsFromEnv, resolveProducerOptions } from '../../producers/index.js';
import { subjectSelector } from '../../cli/commands/erase.js';

const tokenKey = new TokenKey(Buffer.alloc(32, 7));

test('tokens are deterministic per key, equal for equal (normalized) values, different otherwise', () => {
  const t = tokenKey.token('ann@example.com');
  assert.match(t, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(tokenKey.token('ann@example.com'), t);
  assert.equal(tokenKey.token(' Ann@Example.COM '), t, 'e-mail addresses are compared lower-cased and trimmed');
  assert.equal(tokenKey.token('+49 30 1234-5678'), tokenKey.token('+4930 12345678'), 'phone numbers by their digits');
  assert.notEqual(tokenKey.token('ann@example.org'), t);
  assert.notEqual(new TokenKey(Buffer.alloc(32, 8)).token('ann@example.com'), t, 'another key gives other tokens');
  assert.equal(tokenKey.token({ b: 1, a: 2 }), tokenKey.token({ a: 2, b: 1 }), 'objects by canonical JSON');
  assert.notEqual(tokenKey.token('123'), tokenKey.token(123));
  assert.notEqual(tokenKey.subject('email:ann@example.com'), t, 'subject tokens live in their own domain');
});

test('AES-256-GCM round trip with a DEK wrapped by the master key', async () => {
  const wrapper = new LocalKeyWrapper(randomBytes(32));
  assert.match(wrapper.keyId, /^local:[0-9a-f]{16}$/);
  const dek = newDataKey();
  const wrapped = await wrapper.wrap(dek, 'subject-1/k1');
  assert.notDeepEqual(wrapped.subarray(12, 44), dek, 'the wrapped form does not contain the key');
  const unwrapped = await wrapper.unwrap(wrapped, 'subject-1/k1');
  assert.deepEqual(unwrapped, dek);
  const key = createSecretKey(unwrapped);
  const aad = piiAad('k1', 'exec-1');
  const sealed = sealValues(key, ['ann@example.com', { street: 'Main St 1' }, 42], aad);
  assert.deepEqual(openValues(createSecretKey(dek), sealed, aad), ['ann@example.com', { street: 'Main St 1' }, 42]);
  assert.notEqual(sealValues(key, ['ann@example.com'], aad), sealValues(key, ['ann@example.com'], aad), 'a random IV per encryption');
});

test('tampered ciphertext, a wrong key, another context or a wrong master key fail authentication', async () => {
  const key = createSecretKey(newDataKey());
  const aad = piiAad('k1', 'exec-1');
  const sealed = seal(key, Buffer.from('canary@example.com'), aad);
  const raw = Buffer.from(sealed, 'base64');
  raw[20] = raw[20]! ^ 1;
  const failed = (e: unknown) => isAuditlineError(e, 'PII_DECRYPT_FAILED') && !String((e as Error).message).includes('canary');
  assert.throws(() => open(key, raw.toString('base64'), aad), failed, 'flipped ciphertext bit');
  assert.throws(() => open(createSecretKey(newDataKey()), sealed, aad), failed, 'another key');
  assert.throws(() => open(key, sealed, piiAad('k1', 'exec-2')), failed, 'moved to another execution');
  assert.throws(() => open(key, sealed.slice(0, 10), aad), failed, 'truncated');
  const wrapper = new LocalKeyWrapper(randomBytes(32));
  const wrapped = await wrapper.wrap(newDataKey(), 's/k');
  await assert.rejects(new LocalKeyWrapper(randomBytes(32)).unwrap(wrapped, 's/k'), failed, 'another master key');
  await assert.rejects(wrapper.unwrap(wrapped, 's/k2'), failed, 'a wrapped key moved to another row');
});

test("erasure names a producer-hashed subject too when given the producers' hash key: the same subject id the tokenizer derives from the hashed address", () => {
  const hashKey = 'producer-hash-key-0123456789';
  const address = 'Ann.Hashed@Example.com';
  // What a producer in hash mode sends under customer_email, and the subject the tokenizer takes from it.
  const sent = new PiiPolicy(['customer_email'], 'hash', hashKey).protect(address, new Set());
  const tokenizerSubject = subjectId('email', sent)!;
  assert.match(tokenizerSubject, /^hashed:hmac-sha256:[0-9a-f]{64}$/);
  assert.ok(subjectIdsOf({ email: address, producerHashKey: hashKey }).includes(tokenizerSubject));
  assert.ok(subjectIdsOf({ email: address.toLowerCase(), producerHashKey: hashKey }).length >= 2);
  assert.ok(!subjectIdsOf({ email: address }).includes(tokenizerSubject), 'without the key only the email: subject');
});

test('erase and legal-hold read the hash key as producers do: a key mounted with a trailing newline names the subject producers hashed; a short key is refused unechoed', async () => {
  // Kubernetes secrets mounted from files often end in a newline; producerOptionsFromEnv trims it.
  const env = { AUDITLINE_PRODUCER_PII_HASH_KEY: 'producer-hash-key-0123456789\n' };
  const address = 'ann.hashed@example.com';
  const producer = resolveProducerOptions({ brokers: ['127.0.0.1:9092'], schemaRegistryUrl: 'http://127.0.0.1:8081', service: 'w', piiMode: 'hash', ...producerOptionsFromEnv(env) });
  const sent = new PiiPolicy(['customer_email'], 'hash', producer.piiHashKey).protect(address, new Set());
  const selector = await subjectSelector({ email: address }, env);
  assert.ok(subjectIdsOf(selector).includes(subjectId('email', sent)!), 'erase names the hashed subject the tokenizer derived');
  await assert.rejects(
    subjectSelector({ email: address }, { AUDITLINE_PRODUCER_PII_HASH_KEY: ' short-secret\n' }),
    (e) => isAuditlineError(e, 'CONFIG_INVALID') && e.details.setting === 'AUDITLINE_PRODUCER_PII_HASH_KEY' && /at least 16 characters/.test(e.message) && !e.message.includes('short-secret'),
  );
  assert.equal((await subjectSelector({ email: address }, { AUDITLINE_PRODUCER_PII_HASH_KEY: ' \n' })).producerHashKey, undefined, 'blank is not set');
});

test('a customer id written as a JSON integer beyond 2^53 (a 64-bit id) names its own subject, the one `erase --customer-id` derives; a neighbouring id is another subject', () => {
  const policy = { piiFields: new Set(['customer_email']), detectors: new Set(['email', 'phone'] as const), subjectIdField: 'customer_id', subjectEmailField: 'customer_email' };
  const ann = subjectInJson('{"order": 7, "customer_id": 1541815603606036481, "customer_email": "ann@example.com"}', policy);
  const bob = subjectInJson('{"customer_id":1541815603606036482}', policy);
  assert.equal(ann, 'id:1541815603606036481', 'the id as written, not as a double rounds it');
  assert.ok(subjectIdsOf({ customerId: '1541815603606036481' }).includes(ann!), 'erase --customer-id names the subject the tokenizer derived');
  assert.notEqual(bob, ann, 'two customers never share a subject (and a key)');
  // Ids a double holds exactly keep their subject (keys already stored under them stay reachable).
  assert.equal(subjectInJson('{"customer_id": 42}', policy), 'id:42');
  assert.equal(subjectInJson('{"customer_id": 4.2e1}', policy), 'id:42');
  // A subject derived before the fix (the rounded id) is erased too: its keys hold this customer's values.
  assert.ok(subjectIdsOf({ customerId: '1541815603606036481' }).includes('id:1541815603606036500'));
});
