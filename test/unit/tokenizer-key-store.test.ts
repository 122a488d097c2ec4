import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@clickhouse/client';
import { isAuditlineError } from '../../core/errors.js';
import { splitListParam } from '../../core/clients/clickhouse.js';
import { LocalKeyWrapper } from '../../consumers/tokenizer/key-wrapper.js';
import { SubjectKeyStore } from '../../consumers/tokenizer/key-store.js';

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

test('a subject key lookup with ClickHouse unreachable rejects (retriable), it does not leave a rejection unhandled', async () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  const client = createClient({ url: 'http://127.0.0.1:1', request_timeout: 2_000 });
  try {
    const store = new SubjectKeyStore(client, 'auditline', new LocalKeyWrapper(Buffer.alloc(32, 1)), { cacheTtlMs: 0, rotationMs: 86_400_000 });
    await assert.rejects(store.activeKeys(['s1', 's2']), (err: unknown) => isAuditlineError(err) && err.code === 'CLICKHOUSE_UNAVAILABLE' && err.retriable);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(unhandled, [], 'both lookups failed, and both failures were handled');
  } finally {
    process.off('unhandledRejection', onUnhandled);
    await client.close();
  }
});
