import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { isAuditlineError } from '../../core/errors.js';
import { decodeOrDeadLetter } from '../../core/service/index.js';
import { AuditEventCodec, RegistryClient } from '../../schemas/index.js';

test('a registry that accepts the connection and never answers fails the lookup as retriable REGISTRY_UNAVAILABLE after the request timeout', async () => {
  const sockets: Socket[] = [];
  // A TCP server that reads the request and never writes a byte back (a hung registry, a stalled proxy).
  const server = createServer((socket) => sockets.push(socket.on('data', () => undefined)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    const client = new RegistryClient({ url: `http://127.0.0.1:${port}` }, { requestTimeoutMs: 300 });
    const began = performance.now();
    const err = await client.schemaText(7).then(
      () => assert.fail('a lookup without an answer resolved'),
      (e: unknown) => e,
    );
    const elapsed = performance.now() - began;
    assert.ok(isAuditlineError(err, 'REGISTRY_UNAVAILABLE'), `unexpected error ${String(err)}`);
    assert.equal(err.retriable, true);
    assert.match(err.message, /GET \/schemas\/ids\/7/);
    assert.ok(sockets.length >= 1, 'the request reached the server');
    assert.ok(elapsed >= 250 && elapsed < 5_000, `failed after ${elapsed.toFixed(0)} ms`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('every error answer to a schema lookup is retriable (a consumer retries, never dead-letters), 4xx from a proxy and 2xx without a schema included; only the registry\'s own "not found" is not', async () => {
  // A stand-in HTTP endpoint that answers every request with the status and body of the case under test.
  let answer: { status: number; body: string } = { status: 200, body: '{}' };
  const server = createHttpServer((_req, res) => res.writeHead(answer.status, { 'Content-Type': 'application/json' }).end(answer.body));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  const client = new RegistryClient({ url: `http://127.0.0.1:${port}` }, { requestTimeoutMs: 2_000 });
  const codec = new AuditEventCodec(client, 'audit.raw');
  const record = { topic: 'audit.raw', partition: 0, offset: '0', key: null, value: Buffer.from([0, 0, 0, 0, 7, 2, 4]), headers: {}, timestamp: '0' };
  try {
    for (const [status, body] of [
      [429, '{"error_code":42901,"message":"rate limited"}'],
      [401, '{"error_code":40101,"message":"unauthorized"}'],
      [403, '{"error_code":40301,"message":"forbidden"}'],
      [408, ''],
      [503, 'unavailable'],
      [404, '<html>Not Found</html>'],
      [404, '{"message":"HTTP 404 Not Found"}'],
      // A lookup by id sends nothing of the record but the id: other 4xx come from a proxy or a broken registry.
      [400, '{"error_code":400,"message":"Bad Request"}'],
      [422, '{"error_code":42201,"message":"Invalid schema"}'],
      [405, '<html>Method Not Allowed</html>'],
      [410, ''],
      [413, ''],
      // A 2xx that is not a schema (a proxy's login page, an empty answer) is not the registry saying "unknown id".
      [200, '<html>Sign in</html>'],
      [200, '{}'],
      [200, ''],
    ] as const) {
      answer = { status, body };
      const err = await client.schemaText(7).then(() => undefined, (e: unknown) => e);
      assert.ok(isAuditlineError(err, 'REGISTRY_UNAVAILABLE') && err.retriable, `HTTP ${status} ${body}: ${String(err)}`);
      await assert.rejects(decodeOrDeadLetter(codec, record as never), (e) => isAuditlineError(e, 'REGISTRY_UNAVAILABLE'), `HTTP ${status}: the batch is retried, not dead-lettered`);
    }
    answer = { status: 404, body: '{"message":"No content with ID \'7\' was found.","error_code":40403}' };
    const missing = await client.schemaText(7).then(() => undefined, (e: unknown) => e);
    assert.ok(isAuditlineError(missing, 'SCHEMA_NOT_FOUND') && !missing.retriable, String(missing));
    const dead = await decodeOrDeadLetter(codec, record as never);
    assert.ok('deadLetter' in dead && dead.deadLetter.code === 'SCHEMA_NOT_FOUND', 'a schema id the registry does not know is the record\'s fault: dead-lettered');
    // A registration is another matter: the registry refusing the schema sent (422) is the caller's fault, not retried.
    answer = { status: 422, body: '{"error_code":42201,"message":"Invalid schema"}' };
    await assert.rejects(client.setCompatibility('audit.raw-value', 'BACKWARD'), (e) => isAuditlineError(e, 'SCHEMA_INVALID') && !e.retriable);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a registry that answers the compatibility PUT but never the registration fails register() as retriable REGISTRY_UNAVAILABLE, within three request timeouts', { timeout: 10_000 }, async () => {
  const hung: import('node:http').ServerResponse[] = [];
  // PUT /config answers at once; every other request (the library's GET config and POST versions) never gets an answer.
  const server = createHttpServer((req, res) => {
    if (req.method === 'PUT') res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"compatibility":"BACKWARD"}');
    else hung.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  try {
    const client = new RegistryClient({ url: `http://127.0.0.1:${port}` }, { requestTimeoutMs: 200 });
    const began = performance.now();
    const err = await client.register('audit.raw-value', '{"type":"record","name":"R","fields":[]}').then(
      () => assert.fail('a registration without an answer resolved'),
      (e: unknown) => e,
    );
    const elapsed = performance.now() - began;
    assert.ok(isAuditlineError(err, 'REGISTRY_UNAVAILABLE') && err.retriable, String(err));
    assert.match(err.message, /did not answer registering audit\.raw-value within 600 ms/);
    assert.ok(hung.length >= 1, 'the registration reached the server');
    assert.ok(elapsed >= 550 && elapsed < 5_000, `failed after ${elapsed.toFixed(0)} ms`);
  } finally {
    for (const r of hung) r.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
