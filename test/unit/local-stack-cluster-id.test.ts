import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isUsableClusterId, kafkaClusterId } from '../../infra/local-stack/services.js';

test('KRaft cluster ids never start with "-" (kafka-storage would take the id for an option) and are 22 base64url characters', () => {
  // One random id in 64 starts with '-' before the redraw: 20 000 draws would meet about 300 of them.
  const ids = Array.from({ length: 20_000 }, () => kafkaClusterId());
  for (const id of ids) assert.ok(isUsableClusterId(id), id);
  assert.equal(new Set(ids).size, ids.length);
  assert.equal(isUsableClusterId('-AbCdEfGhIjKlMnOpQrStU'), false);
  assert.equal(isUsableClusterId('AbCdEfGhIjKlMnOpQrStU-'), true);
  assert.equal(isUsableClusterId(''), false);
});
