import { createHmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Alert } from './alert.js';
import type { Channel } from './channels.js';
import type { TargetPolicy } from './ssrf.js';

/** Headers of every webhook request (docs/alerts.md, "Verifying a request"). */
export const WEBHOOK_HEADERS = {
  signature: 'x-auditline-signature',
  timestamp: 'x-auditline-timestamp',
  alertId: 'x-auditline-alert-id',
  idempotencyKey: 'idempotency-key',
} as const;

/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`; the timestamp is Unix seconds. */
export function signature(secret: Buffer, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * Text for Slack: its control characters `&`, `<` and `>` escaped, so text a
 * producer chose (a workflow id, a step name, an error type) cannot ping
 * (`<!channel>`) or show a link under another label (`<url|label>`).
 */
function slackText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A Slack code span of `s`, escaped, a backtick (which would end the span) replaced by `'`. */
function slackCode(s: string): string {
  return `\`${slackText(s).replace(/`/g, "'")}\``;
}

/** The request body of an alert in the channel's format. */
export function webhookBody(alert: Alert, format: Channel['format']): string {
  if (format === 'slack') {
    const ids = slackText(alert.execution_ids.slice(0, 10).join(', '));
    const text = slackText(`[${alert.severity.toUpperCase()}] ${alert.summary}`);
    return JSON.stringify({
      text,
      blocks: [
        { type: 'section', text: { type: 'mrkdwn', text: `*${text}*` } },
        {
          type: 'context',
          elements: [{ type: 'mrkdwn', text: `rule ${slackCode(alert.rule)} · key ${slackCode(alert.key)} · ${alert.event_count} event(s)${ids ? ` · executions ${ids}` : ''} · alert ${slackText(alert.alert_id)}` }],
        },
        ...(alert.evidence.links.length > 0 ? [{ type: 'section', text: { type: 'mrkdwn', text: alert.evidence.links.map(slackCode).join('\n') } }] : []),
      ],
    });
  }
  return JSON.stringify({
    alert_id: alert.alert_id,
    rule: alert.rule,
    kind: alert.kind,
    severity: alert.severity,
    key: alert.key,
    summary: alert.summary,
    fired_at: new Date(alert.fired_at).toISOString(),
    execution_ids: alert.execution_ids,
    event_count: alert.event_count,
    evidence: alert.evidence,
  });
}

export interface PostResult {
  /** HTTP status, 0 when no response came. */
  status: number;
  ok: boolean;
  /** Retrying cannot help (a 4xx other than 408/425/429). */
  permanent: boolean;
  /** Error class or status line; never the response body. */
  error: string;
}

/**
 * POSTs a signed alert to a channel: the host is resolved and checked by the
 * target policy first (SSRF_REFUSED is thrown), then the request connects
 * to exactly that address. `timeoutMs` bounds the whole of it, from the
 * lookup to the response's last byte: a receiver that answers slowly, or
 * drips its response, is cut off then (a failed attempt, retried).
 */
export async function postAlert(channel: Channel, alert: Alert, policy: TargetPolicy, timeoutMs: number, now: () => number = Date.now): Promise<PostResult> {
  const timedOut: PostResult = { status: 0, ok: false, permanent: false, error: `timeout after ${timeoutMs} ms` };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof timedOut>((resolve) => (timer = setTimeout(() => resolve(timedOut), timeoutMs)));
  try {
    const target = await Promise.race([policy.resolve(channel.url, channel.name), deadline]);
    if ('ok' in target) return target;
    return await send(channel, alert, target, timeoutMs, now, deadline);
  } finally {
    clearTimeout(timer);
  }
}

function send(channel: Channel, alert: Alert, target: { address: string; family: number }, timeoutMs: number, now: () => number, deadline: Promise<PostResult>): Promise<PostResult> {
  const body = webhookBody(alert, channel.format);
  const timestamp = String(Math.floor(now() / 1000));
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    'user-agent': 'auditline-alerts',
    [WEBHOOK_HEADERS.timestamp]: timestamp,
    [WEBHOOK_HEADERS.signature]: signature(channel.secret, timestamp, body),
    [WEBHOOK_HEADERS.alertId]: alert.alert_id,
    [WEBHOOK_HEADERS.idempotencyKey]: alert.alert_id,
  };
  const client = channel.url.protocol === 'https:' ? https : http;
  return new Promise<PostResult>((resolve) => {
    const req = client.request(
      channel.url,
      {
        method: 'POST',
        headers,
        timeout: timeoutMs,
        // Pin the connection to the address the policy checked.
        lookup: (_host, options, cb) => {
          if ((options as { all?: boolean }).all) (cb as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, [target]);
          else cb(null, target.address, target.family);
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          const ok = status >= 200 && status < 300;
          resolve({ status, ok, permanent: !ok && status >= 400 && status < 500 && ![408, 425, 429].includes(status), error: ok ? '' : `HTTP ${status}` });
        });
        res.on('error', (err) => resolve({ status: res.statusCode ?? 0, ok: false, permanent: false, error: `response error ${(err as NodeJS.ErrnoException).code ?? err.name}` }));
      },
    );
    // The socket idle for timeoutMs, or the whole request past it.
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    void deadline.then((result) => {
      resolve(result);
      req.destroy();
    });
    req.on('error', (err) => resolve({ status: 0, ok: false, permanent: false, error: `request error ${(err as NodeJS.ErrnoException).code ?? err.name}` }));
    req.end(body);
  });
}
