import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ClickHouseClient } from '@clickhouse/client';
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

test('key lookups cost one ClickHouse query per call when every key is cached (the erasure check), whatever the number of subjects; a miss costs that query more than before', async () => {
  const queries: string[] = [];
  let inserts = 0;
  // Answers like an empty database: no key, no erasure.
  const client = {
    query: async (params: { query: string }) => {
      queries.push(/FROM \w+\.(\w+)/.exec(params.query)![1]!);
      return { json: async () => [] };
    },
    insert: async () => void inserts++,
  } as unknown as ClickHouseClient;
  const store = new SubjectKeyStore(client, 'db', new LocalKeyWrapper(Buffer.alloc(32, 7)), { cacheTtlMs: 60_000, rotationMs: 86_400_000 });
  const subjects = Array.from({ length: 500 }, (_, i) => `s${i}`);
  await store.activeKeys(subjects);
  // The erasure check, then what a miss always cost: keys and erasures together, the insert of the new keys, erasures again.
  assert.deepEqual([queries, inserts], [['erasures', 'subject_keys', 'erasures', 'erasures'], 1]);
  queries.length = 0;
  for (let batch = 0; batch < 3; batch++) await store.activeKeys(subjects);
  assert.deepEqual([queries, inserts], [['erasures', 'erasures', 'erasures'], 1], 'one query per batch of 500 cached subjects, no key read or created');
  queries.length = 0;
  await store.activeKeys([]);
  assert.deepEqual(queries, [], 'a batch without PII asks nothing');
});

test('keys past the cache TTL leave memory even when their subjects never come back: a long-running tokenizer holds the unwrapped keys of recent subjects only', async () => {
  const client = { query: async () => ({ json: async () => [] }), insert: async () => undefined } as unknown as ClickHouseClient;
  let now = 1_000_000;
  const store = new SubjectKeyStore(client, 'db', new LocalKeyWrapper(Buffer.alloc(32, 7)), { cacheTtlMs: 60_000, rotationMs: 86_400_000, now: () => now });
  await store.activeKeys(Array.from({ length: 300 }, (_, i) => `old${i}`));
  assert.equal(store.cachedKeyCount, 300);
  now += 30_000;
  await store.activeKeys(['fresh']);
  assert.equal(store.cachedKeyCount, 301, 'keys within their TTL stay');
  now += 31_000;
  await store.activeKeys(['newer']);
  assert.equal(store.cachedKeyCount, 2, 'the 300 keys past their TTL are gone; fresh (31 s old) and newer stay');
  now += 120_000;
  await store.activeKeys([]);
  assert.equal(store.cachedKeyCount, 0, 'a batch without PII sweeps too');
});
