import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { TargetPolicy } from '../../consumers/alerts/index.js';
import { postAlert } from '../../consumers/alerts/webhook.js';
import { alert } from '../helpers/sample-alert.js';

test('the delivery timeout bounds the whole request: a receiver dripping its response is cut off', async () => {
  // Headers at once, then a byte every 200 ms for 10 s: the socket is never idle for the timeout.
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200);
    let n = 0;
    const t = setInterval(() => (++n === 50 || res.destroyed ? (clearInterval(t), res.end()) : res.write('.')), 200);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const url = new URL(`http://127.0.0.1:${(server.address() as { port: number }).port}/hook`);
    const began = Date.now();
    const result = await postAlert({ name: 'c', url, format: 'json', secret: Buffer.from('0123456789abcdef'), ratePerMinute: 60 }, alert, new TargetPolicy(['127.0.0.1/32']), 1_000);
    const took = Date.now() - began;
    // The receiver drips for 10 s: well under that, the 1 s timeout cut it off (the bound leaves room for a loaded machine).
    assert.ok(took < 8_000, `cut off at the timeout, took ${took} ms`);
    assert.deepEqual(result, { status: 0, ok: false, permanent: false, error: 'timeout after 1000 ms' });
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
