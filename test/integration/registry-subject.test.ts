import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { isAuditlineError } from '../../core/errors.js';
import { RegistryClient } from '../../schemas/index.js';

test('requireSubject (a consumer\'s start-up check) passes only for a subject with a version; a registry without it is a retriable SCHEMA_NOT_FOUND naming the URL and subject', async () => {
  // A stand-in HTTP endpoint for a registry that answers but lacks the subject (empty, another environment, still loading).
  let answer: { status: number; body: string } = { status: 200, body: '[]' };
  const paths: string[] = [];
  const server = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/apis/ccompat/v7`;
  const client = new RegistryClient({ url }, { requestTimeoutMs: 2_000 });
  try {
    for (const missing of [
      { status: 404, body: '{"error_code":40401,"message":"Subject \'audit.events-value\' not found."}' },
      { status: 200, body: '[]' },
    ]) {
      answer = missing;
      const err = await client.requireSubject('audit.events-value').then(() => undefined, (e: unknown) => e);
      assert.ok(isAuditlineError(err, 'SCHEMA_NOT_FOUND') && err.retriable, `${missing.status} ${missing.body}: ${String(err)}`);
      assert.ok(err.message.includes(url) && err.message.includes('audit.events-value'), err.message);
      assert.deepEqual(err.details, { subject: 'audit.events-value', registry: url });
    }
    assert.equal(paths.at(-1), '/apis/ccompat/v7/subjects/audit.events-value/versions');
    answer = { status: 200, body: '{"versions":[1]}' };
    await assert.rejects(client.requireSubject('audit.events-value'), (e) => isAuditlineError(e, 'REGISTRY_UNAVAILABLE') && e.retriable, 'not a list of versions: a proxy, retried');
    answer = { status: 200, body: '[1,2]' };
    assert.deepEqual(await client.requireSubject('audit.events-value'), [1, 2]);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('deleteSubject deletes softly, then permanently, and a subject the registry does not know is already gone', async () => {
  const requests: string[] = [];
  let answer: { status: number; body: string } = { status: 200, body: '[1]' };
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(answer.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/apis/ccompat/v7`;
  const client = new RegistryClient({ url }, { requestTimeoutMs: 2_000 });
  try {
    await client.deleteSubject('bench.x-value');
    assert.deepEqual(requests, ['DELETE /apis/ccompat/v7/subjects/bench.x-value', 'DELETE /apis/ccompat/v7/subjects/bench.x-value?permanent=true']);
    answer = { status: 404, body: '{"error_code":40401,"message":"Subject not found"}' };
    await client.deleteSubject('bench.x-value');
    answer = { status: 404, body: 'no such page' };
    await assert.rejects(client.deleteSubject('bench.x-value'), (e) => isAuditlineError(e, 'REGISTRY_UNAVAILABLE'), 'a 404 that is not the registry\'s own is a wrong URL');
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});
