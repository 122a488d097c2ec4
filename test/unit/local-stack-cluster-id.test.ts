import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUsableClusterId, kafkaClusterId } from '../../infra/local-stack/services.js';

/** What `kafka-storage format -t` accepts, written out here rather than taken from the code under test. */
const KRAFT_CLUSTER_ID = /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/;

test('KRaft cluster ids never start with "-" (kafka-storage would take the id for an option) and are 22 base64url characters (16 bytes)', () => {
  // One random id in 64 starts with '-' before the redraw: 20 000 draws would meet about 300 of them.
  const ids = Array.from({ length: 20_000 }, () => kafkaClusterId());
  for (const id of ids) {
    assert.match(id, KRAFT_CLUSTER_ID);
    assert.equal(Buffer.from(id, 'base64url').length, 16, id);
  }
  assert.equal(new Set(ids).size, ids.length);
});

test('isUsableClusterId accepts 22 base64url characters whose first is not "-", and nothing else', () => {
  assert.equal(isUsableClusterId('AbCdEfGhIjKlMnOpQrStU-'), true);
  assert.equal(isUsableClusterId('_bCdEfGhIjKlMnOpQrStU9'), true);
  assert.equal(isUsableClusterId('-AbCdEfGhIjKlMnOpQrStU'), false, 'starts with "-"');
  assert.equal(isUsableClusterId('AbCdEfGhIjKlMnOpQrStU'), false, '21 characters');
  assert.equal(isUsableClusterId('AbCdEfGhIjKlMnOpQrStUv0'), false, '23 characters');
  assert.equal(isUsableClusterId('AbCdEfGhIjKlMnOpQrSt+/'), false, 'base64, not base64url');
  assert.equal(isUsableClusterId('AbCdEfGhIjKlMnOpQrStU='), false, 'padding');
  assert.equal(isUsableClusterId('AbCdEfGhIjKl MnOpQrStU'), false, 'a space');
  assert.equal(isUsableClusterId(''), false);
});
