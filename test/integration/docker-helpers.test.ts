import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { once } from 'node:events';
import { assetPath } from '../../core/paths.js';
import { freePort } from '../helpers/ports.js';

// The two scripts docker-compose.yml runs in the project image (infra/docker/), run here as plain processes.
// Free ports the OS picks: one for the sink, one nothing listens on (fixed ports collide with other worktrees and runs).
const SINK_PORT = await freePort();
let CLOSED_PORT = await freePort();
while (CLOSED_PORT === SINK_PORT) CLOSED_PORT = await freePort();
const SECRET = 'local-only-test-webhook-secret';

function healthcheck(url: string): number | null {
  return spawnSync(process.execPath, [assetPath('infra', 'docker', 'healthcheck.mjs'), url], { timeout: 15_000 }).status;
}

test('webhook sink logs each alert with its signature checked; the healthcheck script answers 0 for a 2xx, 1 otherwise', { timeout: 30_000 }, async () => {
  const sink = spawn(process.execPath, [assetPath('infra', 'docker', 'webhook-sink.mjs')], {
    env: { ...process.env, WEBHOOK_SINK_PORT: String(SINK_PORT), WEBHOOK_SINK_SECRET_SECURITY: SECRET },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  sink.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  try {
    while (!out.includes('listening')) await once(sink.stdout, 'data');
    assert.equal(healthcheck(`http://127.0.0.1:${SINK_PORT}/healthz`), 0);
    assert.equal(healthcheck(`http://127.0.0.1:${SINK_PORT}/nothing-here`), 1, '405 is not healthy');
    assert.equal(healthcheck(`http://127.0.0.1:${CLOSED_PORT}/readyz`), 1, 'nothing listening');

    const body = JSON.stringify({ alert_id: 'a-1', rule: 'failed-execution-touched-pii' });
    const ts = String(Math.floor(Date.now() / 1000));
    const good = `v1=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
    const post = (channel: string, headers: Record<string, string>) =>
      fetch(`http://127.0.0.1:${SINK_PORT}/${channel}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
    for (const r of [
      await post('security', { 'x-auditline-signature': good, 'x-auditline-timestamp': ts, 'x-auditline-alert-id': 'a-1' }),
      await post('security', { 'x-auditline-signature': good, 'x-auditline-timestamp': String(Number(ts) + 1) }),
      await post('security', {}),
      await post('compliance', { 'x-auditline-signature': good, 'x-auditline-timestamp': ts }),
    ]) {
      assert.equal(r.status, 200);
    }
    const deadline = Date.now() + 5_000;
    while (out.split('\n').filter((l) => l.startsWith('{')).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { channel: string; signature: string; alert_id?: string; body: unknown });
    assert.deepEqual(
      lines.map((l) => [l.channel, l.signature]),
      [
        ['security', 'valid'],
        ['security', 'invalid'],
        ['security', 'unsigned'],
        ['compliance', 'no-secret'],
      ],
    );
    assert.equal(lines[0]!.alert_id, 'a-1');
    assert.deepEqual(lines[0]!.body, JSON.parse(body));
  } finally {
    sink.kill('SIGTERM');
    await once(sink, 'exit');
  }
});
