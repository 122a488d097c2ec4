import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitListParam } from '../../core/clients/clickhouse.js';

test('list parameters are split below the budget, every value kept once and in order', () => {
  const ids = Array.from({ length: 10_000 }, (_, i) => `k${String(i).padStart(16, '0')}`);
  const parts = splitListParam(ids, 20_000);
  assert.ok(parts.length > 1);
  assert.deepEqual(parts.flat(), ids);
  for (const part of parts) assert.ok(`[${part.map((v) => encodeURIComponent(`'${v}'`)).join(',')}]`.length < 20_000, 'each part fits the budget');
  assert.deepEqual(splitListParam(['a', 'b']), [['a', 'b']], 'a short list is one part');
  assert.deepEqual(splitListParam([]), []);
  // Escapes count: a value of non-ASCII characters costs its URL-encoded length.
  const wide = Array.from({ length: 100 }, () => 'ü'.repeat(100));
  for (const part of splitListParam(wide, 10_000)) assert.ok(part.length * 600 <= 10_000 + 600);
});
