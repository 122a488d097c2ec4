import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { isAuditlineError } from '../../core/errors.js';
import { RegistryClient } from '../../schemas/index.js';

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
