import { test } from 'node:test';
import assert from 'node:assert/strict';
import { s3Error } from '../../consumers/archiver/s3-errors.js';
import { S3Readiness } from '../../consumers/archiver/s3-readiness.js';

/** A store whose bucket HEAD answers as `answer` says, counting the calls. */
function store(answer: () => Promise<void>) {
  const calls = { n: 0 };
  return { calls, store: { probe: () => (calls.n++, answer()) } };
}

test('refused or expired credentials (HTTP 403) make the S3 check fail with the cause', async () => {
  const expired = Object.assign(new Error('The provided token has expired.'), { name: 'ExpiredToken', $metadata: { httpStatusCode: 403 } });
  const { store: s } = store(() => Promise.reject(s3Error('HEAD s3://archive', expired)));
  assert.deepEqual(await new S3Readiness(s).check(), { ok: false, detail: 'HEAD s3://archive failed: ExpiredToken: The provided token has expired.' });
});

test('one HEAD answers the probes of its TTL (a running one is shared); the next probe after it asks again', async () => {
  let now = 1_000;
  let up = true;
  const { calls, store: s } = store(() => (up ? Promise.resolve() : Promise.reject(new Error('connect ECONNREFUSED'))));
  const check = new S3Readiness(s, { timeoutMs: 100, ttlMs: 5_000, now: () => now });
  assert.deepEqual(await Promise.all([check.check(), check.check()]), [{ ok: true }, { ok: true }]);
  up = false;
  now += 4_999;
  assert.deepEqual(await check.check(), { ok: true }, 'still the cached outcome');
  assert.equal(calls.n, 1);
  now += 1;
  assert.deepEqual(await check.check(), { ok: false, detail: 'connect ECONNREFUSED' });
  assert.equal(calls.n, 2);
});
