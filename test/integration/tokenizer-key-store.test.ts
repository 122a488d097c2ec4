import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '@clickhouse/client';
import { isAuditlineError } from '../../core/errors.js';
import { LocalKeyWrapper } from '../../consumers/tokenizer/key-wrapper.js';
import { SubjectKeyStore } from '../../consumers/tokenizer/key-store.js';

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
