// Local webhook receiver of docker-compose.yml and of `auditline pipeline`: the alerts service's channels
// point here, so `docker compose logs webhook-sink` shows every delivered
// alert. One JSON line per request, with the signature checked the way a
// receiver should (docs/alerts.md, "Verifying a request"): header
// x-auditline-signature = v1=<hex HMAC-SHA256(secret, "<x-auditline-timestamp>.<body>")>.
// The first path segment names the channel; its secret is in
// WEBHOOK_SINK_SECRET_<CHANNEL> (upper case, - as _). Local use only: it
// answers 200 to every POST and keeps nothing.
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';

const port = Number(process.env.WEBHOOK_SINK_PORT ?? 8080);
// 0.0.0.0 in its container; `auditline pipeline` runs it on 127.0.0.1.
const host = process.env.WEBHOOK_SINK_HOST ?? '0.0.0.0';
const secretOf = (channel) => process.env[`WEBHOOK_SINK_SECRET_${channel.toUpperCase().replace(/-/g, '_')}`];

/** valid | invalid | unsigned | no-secret: how the request's signature compares with the channel's secret. */
function checkSignature(secret, timestamp, body, header) {
  if (!header || !timestamp) return 'unsigned';
  if (!secret) return 'no-secret';
  const expected = Buffer.from(`v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`);
  const given = Buffer.from(header);
  return given.length === expected.length && timingSafeEqual(given, expected) ? 'valid' : 'invalid';
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"status":"ok"}\n');
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405).end();
      return;
    }
    const body = Buffer.concat(chunks).toString('utf8');
    const channel = path.split('/').filter(Boolean)[0] ?? '';
    let parsed;
    try {
      parsed = JSON.parse(body);
    } catch {
      parsed = body.slice(0, 2_000);
    }
    const line = {
      time: new Date().toISOString(),
      channel,
      alert_id: req.headers['x-auditline-alert-id'],
      idempotency_key: req.headers['idempotency-key'],
      signature: checkSignature(secretOf(channel), req.headers['x-auditline-timestamp'], body, req.headers['x-auditline-signature']),
      body: parsed,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`);
    res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"ok":true}\n');
  });
});
server.listen(port, host, () => process.stdout.write(`webhook sink listening on ${host}:${port}\n`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
