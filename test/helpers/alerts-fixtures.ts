import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { payloadOf, SCHEMA_VERSION, type AuditEvent, type EventKind, type EventPayloads } from '../../schemas/index.js';
import { alertGroups, signature } from '../../consumers/alerts/index.js';
import { committedToEnd, waitFor } from './hotstore-stack.js';
import { createTestTopics } from './kafka.js';
import { registerTestSubjects } from './subjects.js';
import { uniqueName } from './names.js';
import { clickhouse, createTokenizerDatabase, kafka } from './tokenizer-stack.js';
import { tempDir } from './temp-dir.js';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { createLogger } from '../../core/logger.js';
import { AlertsService, loadAlertsConfig, parseRules } from '../../consumers/alerts/index.js';
import { makeAlert } from '../../consumers/alerts/alert.js';
import type { OutboxEntry } from '../../consumers/alerts/delivery.js';

export interface AlertsNames {
  events: string;
  signals: string;
  outbox: string;
  dlq: string;
  group: string;
}

/** Unique events, signals, outbox and DLQ topics and a unique group id; the events subject registered, as `setup` does (unless `subjects: false`). */
export async function createAlertsTopics(prefix: string, options: { subjects?: boolean } = {}): Promise<AlertsNames> {
  const base = uniqueName(`it-${prefix}`);
  const names = { events: `${base}.events`, signals: `${base}.signals`, outbox: `${base}.outbox`, dlq: `${base}.dlq`, group: `${base}-alerts` };
  await createTestTopics(kafka, [
    { name: names.events, partitions: 3 },
    { name: names.signals, partitions: 3 },
    { name: names.outbox, partitions: 2 },
    { name: names.dlq, partitions: 1 },
  ]);
  if (options.subjects !== false) await registerTestSubjects([names.events]);
  return names;
}

export async function dropAlertsTopics(names: AlertsNames): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  await admin.deleteGroups([names.group, `${names.group}.rules`, `${names.group}.delivery`]).catch(() => undefined);
  await admin.deleteTopics({ topics: [names.events, names.signals, names.outbox, names.dlq] }).catch(() => undefined);
  await admin.disconnect();
}

/**
 * Waits until every stage of the alerts service committed its input topic to
 * the end, in pipeline order: each event turned into signals, each signal into
 * alerts, each alert delivered or dead-lettered (a failed attempt is written
 * back to the outbox, so it is still ahead of the commit). Every record
 * published before the call has then been processed and every webhook
 * request it caused has been received.
 */
export async function alertsSettled(names: AlertsNames, timeoutMs = 30_000): Promise<void> {
  const groups = alertGroups(names.group);
  for (const [group, topic] of [
    [groups.events, names.events],
    [groups.rules, names.signals],
    [groups.delivery, names.outbox],
  ] as const) {
    await waitFor(`${group} committed ${topic} to the end`, () => committedToEnd(group, topic), timeoutMs);
  }
}

/** One request the receiver got. */
export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  /** The status the receiver answered with (0 while it has not answered yet). */
  status: number;
}

/**
 * A real webhook receiver (node:http on 127.0.0.1). `down()` closes the
 * listener (connections are refused), `up()` listens on the same port again.
 */
export class Receiver {
  readonly requests: Received[] = [];
  private server: Server | undefined;
  port = 0;

  /** `status` answers each request (its path, and how many came on that path before it), when it settles: 200 at once unless told. */
  constructor(private readonly status: (path: string, before: number) => number | Promise<number> = () => 200) {}

  async up(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => {
        const p = req.url ?? '/';
        const received: Received = { path: p, headers: req.headers, body, at: Date.now(), status: 0 };
        const status = this.status(p, this.on(p).length);
        this.requests.push(received);
        void Promise.resolve(status).then((s) => {
          received.status = s;
          res.writeHead(s, { 'content-type': 'application/json' }).end(s === 200 ? '{"ok":true}' : '{"ok":false}');
        });
      });
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async down(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  url(p: string): string {
    return `http://127.0.0.1:${this.port}${p}`;
  }

  on(p: string): Received[] {
    return this.requests.filter((r) => r.path === p);
  }

  /** Waits until `count` requests arrived on path `p` (rejects after `timeoutMs`). */
  async waitFor(p: string, count: number, timeoutMs = 30_000): Promise<Received[]> {
    const until = Date.now() + timeoutMs;
    while (this.on(p).length < count) {
      if (Date.now() > until) throw new Error(`receiver got ${this.on(p).length} of ${count} requests on ${p} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return this.on(p);
  }
}

/** True when a request's signature header is the HMAC of its timestamp and body under `secret`. */
export function validSignature(r: Received, secret: string): boolean {
  const ts = String(r.headers['x-auditline-timestamp'] ?? '');
  return ts !== '' && r.headers['x-auditline-signature'] === signature(Buffer.from(secret), ts, r.body);
}

/** Writes the rules and channels files into `dir`; returns their paths. */
export function writeAlertFiles(dir: string, rulesYaml: string, channels: Record<string, { url: string; format?: string; secretEnv: string }>): { rules: string; channels: string } {
  const rules = path.join(dir, 'rules.yaml');
  const ch = path.join(dir, 'channels.yaml');
  writeFileSync(rules, rulesYaml);
  writeFileSync(
    ch,
    `channels:\n${Object.entries(channels)
      .map(([name, c]) => `  ${name}:\n    url: ${c.url}\n    format: ${c.format ?? 'json'}\n    secret_env: ${c.secretEnv}\n    rate_per_minute: 6000\n`)
      .join('')}`,
  );
  return { rules, channels: ch };
}

/** Environment of an alerts service on the test's topics and database, with fast timings. */
export function alertsEnv(names: AlertsNames, database: string, files: { rules: string; channels: string }, extra: Record<string, string> = {}): Record<string, string> {
  return {
    AUDITLINE_CLICKHOUSE_DATABASE: database,
    AUDITLINE_ALERTS_TOPIC: names.events,
    AUDITLINE_ALERTS_SIGNALS_TOPIC: names.signals,
    AUDITLINE_ALERTS_OUTBOX_TOPIC: names.outbox,
    AUDITLINE_ALERTS_DLQ_TOPIC: names.dlq,
    AUDITLINE_ALERTS_GROUP_ID: names.group,
    AUDITLINE_ALERTS_FROM_BEGINNING: 'true',
    AUDITLINE_ALERTS_RULES_FILE: files.rules,
    AUDITLINE_ALERTS_CHANNELS_FILE: files.channels,
    AUDITLINE_ALERTS_TICK_MS: '200',
    // No tokenizer transactions here: timers fire at their deadline.
    AUDITLINE_ALERTS_TIMER_GRACE_MS: '0',
    AUDITLINE_ALERTS_FLUSH_MS: '50',
    AUDITLINE_ALERTS_RETRY_INITIAL_MS: '100',
    AUDITLINE_ALERTS_RETRY_MAX_MS: '1000',
    AUDITLINE_ALERTS_SESSION_TIMEOUT_MS: '6000',
    AUDITLINE_ALERTS_DELIVERY_BACKOFF_INITIAL_MS: '300',
    AUDITLINE_ALERTS_DELIVERY_BACKOFF_MAX_MS: '1500',
    AUDITLINE_ALERTS_DELIVERY_TIMEOUT_MS: '2000',
    AUDITLINE_ALERTS_ALLOWED_TARGETS: '127.0.0.1/32',
    AUDITLINE_ALERTS_METRICS_HOST: '127.0.0.1',
    AUDITLINE_ALERTS_METRICS_PORT: '0',
    AUDITLINE_ALERTS_LOG_LEVEL: 'warn',
    ...extra,
  };
}

/** A tokenized PII value as the tokenizer writes it. */
export const PII_VALUE = { $pii: { v: 1, t: 'dGVzdC10b2tlbg', m: 'j***@e***.com', f: 'customer_email', k: 'key-test' } };

export interface EventOptions {
  workflowId?: string;
  executionId?: string;
  service?: string;
  sequence?: number;
  time?: number;
}

/** One schema-valid event of kind `kind` with controlled envelope fields. */
export function event<K extends EventKind>(kind: K, value: EventPayloads[K], o: EventOptions = {}): AuditEvent {
  return {
    event_id: randomUUID(),
    event_time: o.time ?? Date.now(),
    execution_id: o.executionId ?? randomUUID(),
    workflow_id: o.workflowId ?? 'WF-TEST',
    sequence: o.sequence ?? 1,
    correlation_id: null,
    producer: { service: o.service ?? 'alerts-test', host: 'test-host', client_version: '0.1.0', instance_id: 'i-1' },
    schema_version: SCHEMA_VERSION,
    payload: payloadOf(kind, value),
  };
}

export const started = (input: unknown, o: EventOptions = {}) =>
  event('ExecutionStarted', { workflow_name: 'test', workflow_version: '1', trigger: 'api', triggered_by: { kind: 'service', id: 'svc' }, start_time: o.time ?? Date.now(), input: JSON.stringify(input), input_truncation: null, parent_execution_id: null }, o);

export const step = (status: 'success' | 'failed', o: EventOptions = {}) =>
  event(
    'StepFinished',
    { step_id: 1, step_name: 'charge', attempt: 1, start_time: Date.now() - 5, end_time: Date.now(), duration_ms: 5, status, input_data: '{}', output_data: status === 'success' ? '{}' : null, data_truncation: null, error: status === 'failed' ? { type: 'TimeoutError', message: 'timed out' } : null },
    o,
  );

export const finished = (status: 'success' | 'failed', o: EventOptions = {}) =>
  event('ExecutionFinished', { end_time: Date.now(), duration_ms: 10, status, output: null, error: status === 'failed' ? { type: 'TimeoutError', message: 'a step failed' } : null }, o);

/** The events of one execution in sequence order (sequence numbers 1..n unless set). */
export function execution(events: ((o: EventOptions) => AuditEvent)[], o: EventOptions = {}): AuditEvent[] {
  const executionId = o.executionId ?? randomUUID();
  return events.map((make, i) => make({ ...o, executionId, sequence: i + 1 }));
}

/**
 * An alerts service on its own topics and database whose channels POST to
 * `receiver` (channel name -> path `/<name>`), for tests that write outbox
 * records directly (`enqueue`). `down()` stops and removes it all.
 */
export async function startDeliveryStack(prefix: string, receiver: Receiver, rulesYaml: string, channels: string[], extraEnv: Record<string, string> = {}) {
  const client = clickhouse();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const stop = new AbortController();
  await receiver.up();
  const database = await createTokenizerDatabase(client);
  const names = await createAlertsTopics(prefix);
  const files = writeAlertFiles(tempDir(prefix), rulesYaml, Object.fromEntries(channels.map((c) => [c, { url: receiver.url(`/${c}`), secretEnv: 'IT_ALERTS_SECRET' }])));
  const config = loadAlertsConfig({ ...process.env, IT_ALERTS_SECRET: 'test-secret-0123456789abcdef', ...alertsEnv(names, database, files, extraEnv) });
  const service = new AlertsService(config, { logger: createLogger(`${prefix}-it`, 'warn'), registry: new Registry() });
  await service.start(stop.signal);
  await producer.connect();
  const [rule] = parseRules(parse(rulesYaml), 'test');
  return {
    names,
    /** Writes outbox records of alerts with these summaries for `channel` on `partition` (each channel its own queue), in one request; returns the alert ids. */
    async enqueue(channel: string, partition: number, summaries: string[], entry: Partial<Pick<OutboxEntry, 'attempt' | 'due_at'>> = {}): Promise<string[]> {
      const now = Date.now();
      const alerts = summaries.map((summary) => makeAlert(rule!, `key-${channel}`, `${summary} ${now}`, now, summary, { event_ids: [], workflow_ids: ['WF-NONE'] }, [], 1));
      const messages = alerts.map((alert) => ({ partition, key: channel, value: JSON.stringify({ alert, channel, attempt: 1, first_at: now, due_at: now, ...entry } satisfies OutboxEntry) }));
      await producer.send({ topic: names.outbox, acks: -1, messages });
      return alerts.map((a) => a.alert_id);
    },
    async down(): Promise<void> {
      stop.abort();
      await producer.disconnect();
      await service.stop();
      await receiver.down();
      await dropAlertsTopics(names);
      await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
      await client.close();
    },
  };
}
