import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEndpoints } from '../../core/endpoints.js';

test('S3 timeouts are validated settings with defaults', () => {
  const e = loadEndpoints({});
  assert.deepEqual([e.s3.connectTimeoutMs, e.s3.idleTimeoutMs], [5_000, 60_000]);
  assert.throws(() => loadEndpoints({ AUDITLINE_S3_IDLE_TIMEOUT_MS: '10' }), /AUDITLINE_S3_IDLE_TIMEOUT_MS: must be at least 1000/);
});
