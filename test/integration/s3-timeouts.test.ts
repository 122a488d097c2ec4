import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { HeadBucketCommand } from '@aws-sdk/client-s3';
import { createS3 } from '../../core/clients/s3.js';
import { loadEndpoints } from '../../core/endpoints.js';

test('S3 requests to a server that accepts and never answers time out instead of hanging', async (t) => {
  const sockets: Socket[] = [];
  const server = createServer((socket) => void sockets.push(socket)).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const { port } = server.address() as { port: number };
  const config = loadEndpoints({ AUDITLINE_S3_ENDPOINT: `http://127.0.0.1:${port}`, AUDITLINE_S3_ACCESS_KEY_ID: 'a', AUDITLINE_S3_SECRET_ACCESS_KEY: 'b', AUDITLINE_S3_IDLE_TIMEOUT_MS: '1000' }).s3;
  assert.deepEqual([config.connectTimeoutMs, config.idleTimeoutMs], [5_000, 1_000]);
  const s3 = createS3(config);
  const started = Date.now();
  await assert.rejects(s3.send(new HeadBucketCommand({ Bucket: 'never-answers' })));
  s3.destroy();
  const took = Date.now() - started;
  // Three attempts (the SDK's default) of one second each, with its backoff between them.
  assert.ok(took >= 1_000 && took < 20_000, `gave up after ${took} ms`);
  assert.ok(sockets.length >= 1, 'the server was reached');
});
