/**
 * `npm run test:reliability`: the demo load through the whole pipeline while
 * things break, then a reconciliation of every event. Too long for CI (about
 * 6-8 minutes by default); run it before a release and after changes to
 * commits, retries or the supervisor.
 *
 * It runs on a PRIVATE local stack (its own directory and ports, 298xx), so
 * that it can stop the broker and ClickHouse without disturbing anything
 * else, and runs every consumer service under the pipeline supervisor (which
 * restarts what is killed). Meanwhile: each service is SIGKILLed several
 * times, the broker is restarted, ClickHouse is stopped for a minute, the
 * webhook receiver is down and S3 fails for a minute each.
 * At the end: every event the producer client wrote to audit.raw must be
 * exactly once in audit.events (read committed) and in the hot store, with
 * each execution's sequence complete, the failed-executions query must
 * return exactly the failed executions, every execution must be in the
 * archive index and `archive verify` must pass, every failed execution
 * must have reached the security webhook (once per idempotency id; repeated
 * POSTs of an id, which at-least-once delivery allows, are reported).
 * Also during the load: the webhook receiver is down and the S3 endpoint
 * resets every connection, each for RELIABILITY_OUTAGE_S. Prints a tally; exit 1 on any
 * difference.
 *
 * Settings: RELIABILITY_DURATION_S (load duration, default 240),
 * RELIABILITY_RATE (executions per second, default 15),
 * RELIABILITY_OUTAGE_S (ClickHouse outage, default 60),
 * RELIABILITY_KEEP=1 keeps the private stack running afterwards. `--help`
 * prints the duration and these settings and starts nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { SERVICES } from '../../cli/commands/run.js';
import { Supervisor, type SupervisedService } from '../../cli/pipeline/supervisor.js';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { assetPath } from '../../core/paths.js';
import { settingsPrefix } from '../../core/service/settings.js';
import { failedExecutions } from '../../consumers/hotstore/index.js';
import { runDemo, type DemoSummary } from '../../demo/driver.js';
import { DEFAULT_LAYOUT, TOPICS } from '../../infra/kafka/topics.js';
import { loadStackSettings, type ServiceName } from '../../infra/local-stack/settings.js';
import { stackDown, stackUp } from '../../infra/local-stack/stack.js';
import { loadRetention } from '../../infra/retention.js';
import { setupAll } from '../../infra/setup.js';
import { createAuditProducer } from '../../producers/index.js';
import { AuditEventCodec, RegistryClient } from '../../schemas/index.js';
import { Receiver, writeAlertFiles } from '../helpers/alerts-fixtures.js';
import { ClickHouseProxy } from '../helpers/hotstore-proxy.js';
import { signingKeyPem } from '../helpers/archiver-stack.js';
import { freePort } from '../helpers/ports.js';
import { testKeys } from '../helpers/tokenizer-fixtures.js';

const { logLevel } = kafkajs;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const DURATION_S = Number(process.env.RELIABILITY_DURATION_S ?? 240);
const RATE = Number(process.env.RELIABILITY_RATE ?? 15);
const OUTAGE_S = Number(process.env.RELIABILITY_OUTAGE_S ?? 60);
/** Partitions of audit.raw and audit.events as `setup` creates them. */
const PARTITIONS = DEFAULT_LAYOUT.partitions;
const say = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// `--help` describes the run and its settings and starts nothing (the run takes minutes and a private stack).
const USAGE = `npm run test:reliability [-- --help]

Runs the demo load through every consumer service on a PRIVATE local stack
(its own directory, ports 298xx) while services are SIGKILLed, the broker is
restarted, ClickHouse, the webhook receiver and S3 fail, then reconciles every
event; prints a tally and exits 1 on any difference. Takes about 6-8 minutes
with the defaults (the load alone lasts RELIABILITY_DURATION_S, plus stack
start, outages and the final drain).

Settings (environment):
  RELIABILITY_DURATION_S  load duration, seconds (default 240; now ${DURATION_S})
  RELIABILITY_RATE        executions per second (default 15; now ${RATE})
  RELIABILITY_OUTAGE_S    ClickHouse, webhook and S3 outage, seconds each (default 60; now ${OUTAGE_S})
  RELIABILITY_KEEP=1      keep the private stack running afterwards
`;
const args = process.argv.slice(2);
if (args.includes('--help') || args.includes('-h')) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (args.length > 0) {
  process.stderr.write(`unknown argument ${args[0]}\n\n${USAGE}`);
  process.exit(2);
}

// A private stack: own directory and ports, so the suite may stop its broker and ClickHouse.
const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-reliability-'));
const stackEnv: NodeJS.ProcessEnv = {
  ...process.env,
  AUDITLINE_STACK_DIR: stackDir,
  AUDITLINE_STACK_KAFKA_PORT: '29801',
  AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '29802',
  AUDITLINE_STACK_REGISTRY_PORT: '29803',
  AUDITLINE_STACK_CLICKHOUSE_PORT: '29804',
  AUDITLINE_STACK_S3_PORT: '29805',
};
const endpointEnv = {
  AUDITLINE_KAFKA_BROKERS: '127.0.0.1:29801',
  AUDITLINE_SCHEMA_REGISTRY_URL: 'http://127.0.0.1:29803/apis/ccompat/v7',
  AUDITLINE_CLICKHOUSE_URL: 'http://127.0.0.1:29804',
  AUDITLINE_S3_ENDPOINT: 'http://127.0.0.1:29805',
  // moto accepts any credentials; with an endpoint configured the SDK would otherwise look for real ones.
  AUDITLINE_S3_ACCESS_KEY_ID: 'reliability',
  AUDITLINE_S3_SECRET_ACCESS_KEY: 'reliability',
};
const settings = loadStackSettings(stackEnv);
const endpoints = loadEndpoints({ ...stackEnv, ...endpointEnv });
const database = endpoints.clickhouse.database;

interface Tally {
  check: string;
  expected: number;
  actual: number;
}
const tally: Tally[] = [];
const record = (check: string, expected: number, actual: number) => {
  tally.push({ check, expected, actual });
  say(`${expected === actual ? 'ok  ' : 'DIFF'} ${check}: expected ${expected}, got ${actual}`);
};

/** Chaos actions, each at an offset (seconds) into the load. */
function chaosPlan(services: string[]): { at: number; what: string; run: (s: Supervisor) => Promise<void> }[] {
  const plan: { at: number; what: string; run: (s: Supervisor) => Promise<void> }[] = [];
  // Each service SIGKILLed three times, spread over the run and interleaved between services.
  const kills = services.flatMap((name, i) => [0, 1, 2].map((k) => ({ name, at: 15 + i * 7 + k * Math.floor(DURATION_S / 3.2) })));
  for (const { name, at } of kills) {
    plan.push({ at, what: `SIGKILL ${name}`, run: async (s) => void s.kill(name, 'SIGKILL') });
  }
  const only = (names: ServiceName[]) => names;
  plan.push({
    at: Math.floor(DURATION_S * 0.3),
    what: 'restart the broker',
    run: async () => {
      await stackDown(settings, say, only(['kafka']));
      await sleep(5_000);
      await stackUp(settings, say, only(['kafka']));
    },
  });
  plan.push({
    at: Math.floor(DURATION_S * 0.4),
    what: `webhook receiver down for ${OUTAGE_S} s`,
    run: async () => {
      await receiver.down();
      await sleep(OUTAGE_S * 1_000);
      await receiver.up();
    },
  });
  plan.push({
    at: Math.floor(DURATION_S * 0.75),
    what: `S3 endpoint failing for ${OUTAGE_S} s (every connection reset)`,
    run: async () => {
      s3Proxy.set('down');
      await sleep(OUTAGE_S * 1_000);
      s3Proxy.set('up');
    },
  });
  plan.push({
    at: Math.floor(DURATION_S * 0.55),
    what: `stop ClickHouse for ${OUTAGE_S} s`,
    run: async () => {
      await stackDown(settings, say, only(['clickhouse']));
      await sleep(OUTAGE_S * 1_000);
      await stackUp(settings, say, only(['clickhouse']));
    },
  });
  return plan.sort((a, b) => a.at - b.at);
}

/** Every record of a topic, decoded: event id -> occurrences, and per execution the sequences seen. */
async function readAll(topic: string, readUncommitted: boolean): Promise<{ ids: Map<string, number>; sequences: Map<string, number[]>; total: number }> {
  const kafka = createKafka(endpoints.kafka, undefined, { logLevel: logLevel.NOTHING });
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), topic);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const wanted = ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0);
  const consumer = kafka.consumer({ groupId: `reliability-reader-${Date.now()}-${topic}`, readUncommitted, maxWaitTimeInMs: 200 });
  const ids = new Map<string, number>();
  const sequences = new Map<string, number[]>();
  let total = 0;
  const started = Date.now();
  let lastProgress = Date.now();
  let capped = false;
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const done = new Promise<void>((resolve) => {
    void consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          if (!m.value) continue;
          const e = await codec.decode(m.value);
          total += 1;
          ids.set(e.event_id, (ids.get(e.event_id) ?? 0) + 1);
          (sequences.get(e.execution_id) ?? sequences.set(e.execution_id, []).get(e.execution_id)!).push(e.sequence);
        }
        if (batch.messages.length > 0) lastProgress = Date.now();
      },
    });
    // Transaction markers and aborted records take offsets too, so the offset count is an upper bound: stop 3 s
    // after reaching it, or once records came and then nothing for 15 s (joining the group after the chaos can
    // itself take a while, so an empty start is not the end), or after 5 minutes.
    const timer = setInterval(() => {
      const idle = Date.now() - lastProgress;
      const ended = (total >= wanted && idle > 3_000) || (total > 0 && idle > 15_000);
      if (ended || Date.now() - started > 300_000) {
        capped = !ended;
        clearInterval(timer);
        resolve();
      }
    }, 500);
  });
  await done;
  await consumer.disconnect();
  // Stopped by the 5 minute limit while records were still coming (or none came): the read is incomplete, and the
  // checks on it would be wrong. `wanted` counts offsets, markers included: an upper bound of the records.
  if (capped && total < wanted) record(`${topic}: records read before the 5 min read limit (offsets, an upper bound)`, wanted, total);
  return { ids, sequences, total };
}

/** Consumer lag of a group on a topic (end offset - committed, summed over partitions). */
async function lag(group: string, topic: string): Promise<number> {
  const kafka = createKafka(endpoints.kafka, undefined, { logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, [committed]] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId: group, topics: [topic] })]);
    return ends.reduce((n, p) => {
      const c = Number(committed?.partitions.find((x) => x.partition === p.partition)?.offset ?? -1);
      return n + Math.max(0, Number(p.high) - Math.max(c, Number(p.low)));
    }, 0);
  } finally {
    await admin.disconnect();
  }
}

async function main(): Promise<number> {
  say(`reliability: private stack in ${stackDir}`);
  try {
    await stackUp(settings, say);
    await setupAll(endpoints, loadRetention(), say);
    return await underLoad();
  } finally {
    if (!process.env.RELIABILITY_KEEP) await stackDown(loadStackSettings(stackEnv), say);
  }
}

const receiver = new Receiver();
const s3Proxy = new ClickHouseProxy({ host: '127.0.0.1', port: 29805 });
let serviceEnv: Record<string, string> = {};

async function underLoad(): Promise<number> {

  const names = Object.keys(SERVICES);
  const keys = testKeys();
  const archiveKeys = signingKeyPem();
  // The alert channels post to a real receiver in this process.
  await receiver.up();
  // The services reach S3 through a proxy the suite can make fail (moto itself keeps its data only while it runs).
  const s3ProxyUrl = await s3Proxy.start();
  serviceEnv = {
    ...endpointEnv,
    AUDITLINE_S3_ENDPOINT: s3ProxyUrl,
    AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey,
    AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey,
    AUDITLINE_ARCHIVER_SIGNING_KEY: archiveKeys.privatePem,
    AUDITLINE_ARCHIVER_PUBLIC_KEY: archiveKeys.publicPem,
    AUDITLINE_ARCHIVER_ROLL_MS: '10000',
    AUDITLINE_ARCHIVER_DIGEST_INTERVAL_MS: '10000',
    // The shipped rules; channels like the shipped ones but with a rate limit above the load, so that
    // the check after the load is about delivery, not about the production rate limit's queue.
    AUDITLINE_ALERTS_CHANNELS_FILE: writeAlertFiles(stackDir, readFileSync(assetPath('infra', 'alerts', 'rules.yaml'), 'utf8'), {
      security: { url: receiver.url('/security'), format: 'slack', secretEnv: 'AUDITLINE_ALERTS_SECURITY_WEBHOOK_SECRET' },
      compliance: { url: receiver.url('/compliance'), secretEnv: 'AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_SECRET' },
    }).channels,
    AUDITLINE_ALERTS_SECURITY_WEBHOOK_URL: receiver.url('/security'),
    AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_URL: receiver.url('/compliance'),
    AUDITLINE_ALERTS_SECURITY_WEBHOOK_SECRET: 'reliability-security-secret',
    AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_SECRET: 'reliability-compliance-secret',
    AUDITLINE_ALERTS_ALLOWED_TARGETS: '127.0.0.1/32',
  };
  const services: SupervisedService[] = [];
  for (const name of names) {
    const port = await freePort();
    const p = settingsPrefix(name);
    Object.assign(serviceEnv, { [`${p}METRICS_HOST`]: '127.0.0.1', [`${p}METRICS_PORT`]: String(port), [`${p}RETRY_MAX_MS`]: '5000' });
    services.push({ name, metricsPort: port });
  }
  const supervisor = new Supervisor(services, {
    cli: assetPath('dist', 'cli', 'main.js'),
    logDir: path.join(stackDir, 'pipeline-logs'),
    env: { ...stackEnv, ...serviceEnv },
    onChange: (statuses) => say(`services: ${statuses.map((s) => `${s.name}=${s.state}${s.restarts ? `(${s.restarts} restarts)` : ''}`).join(' ')}`),
  });
  supervisor.start();
  try {
    await supervisor.waitReady(180_000);
    const executions = Math.round(DURATION_S * RATE);
    say(`reliability: ${executions} executions at ${RATE}/s over ${DURATION_S} s; chaos meanwhile`);
    const audit = createAuditProducer({ brokers: endpoints.kafka.brokers, schemaRegistryUrl: endpoints.registry.url, service: 'reliability', spoolDir: path.join(stackDir, 'spool'), sendTimeoutMs: 10_000 });
    const t0 = Date.now();
    const chaos = (async () => {
      for (const step of chaosPlan(names)) {
        const wait = t0 + step.at * 1_000 - Date.now();
        if (wait > 0) await sleep(wait);
        say(`chaos: ${step.what}`);
        await step.run(supervisor);
      }
    })();
    let summary: DemoSummary;
    try {
      summary = await runDemo(audit, {
        executions,
        rate: RATE,
        seed: 20261128,
        concurrency: 200,
        progressEveryMs: 15_000,
        onProgress: (p) => say(`load: ${p.done}/${p.total} executions recorded`),
      });
    } finally {
      const flushed = await audit.close();
      say(`producer closed; ${flushed.spooledEvents} events left in the spool`);
      record('events left in the producer spool', 0, flushed.spooledEvents);
    }
    await chaos;
    record('executions the client could not record', 0, summary.errors);

    say('reliability: load done; waiting for every consumer group to catch up');
    const groups: [string, string][] = [
      ['auditline-tokenizer', TOPICS.raw],
      ['auditline-hotstore', TOPICS.events],
      ['auditline-archiver', TOPICS.events],
      ['auditline-alerts', TOPICS.events],
      // The alerts' rule stage and delivery outbox: delivered (or dead-lettered) means committed.
      ['auditline-alerts.rules', TOPICS.alertSignals],
      ['auditline-alerts.delivery', TOPICS.alertOutbox],
    ];
    // audit.events is written in transactions: each partition's last offset can be a commit marker
    // no consumer commits past, so "caught up" is a lag of at most one per partition, unchanged for 10 s.
    const drainDeadline = Date.now() + 10 * 60_000;
    let previous: number[] = [];
    const changedAt = groups.map(() => Date.now());
    let lastSaid = 0;
    let lagging = 0;
    for (;;) {
      const lags = await Promise.all(groups.map(([g, t]) => lag(g, t).catch(() => Number.NaN)));
      const text = groups.map(([g], i) => `${g}=${lags[i]}`).join(' ');
      const now = Date.now();
      lags.forEach((l, i) => {
        if (!Object.is(l, previous[i])) changedAt[i] = now;
      });
      previous = lags;
      // Caught up: at most one per partition behind, unchanged for 10 s (a lag that could not be read is NaN: not caught up).
      const caughtUp = lags.map((l, i) => l <= PARTITIONS && now - changedAt[i]! >= 10_000);
      if (caughtUp.every(Boolean)) break;
      if (now - lastSaid > 30_000) {
        say(`lag: ${text}`);
        lastSaid = now;
      }
      if (now > drainDeadline) {
        say(`lag did not drain: ${text}`);
        lagging = caughtUp.filter((c) => !c).length;
        break;
      }
      await sleep(2_000);
    }
    // Counted, not just logged: the reconciliation below is only meaningful once every group caught up.
    record(`consumer groups not caught up within 10 min (lag <= ${PARTITIONS}, steady 10 s)`, 0, lagging);
    await sleep(3_000);

    const raw = await readAll(TOPICS.raw, true);
    const events = await readAll(TOPICS.events, false);
    record('executions in audit.raw', summary.outcomes.length, raw.sequences.size);
    let gaps = 0;
    for (const seqs of raw.sequences.values()) {
      const sorted = [...new Set(seqs)].sort((a, b) => a - b);
      if (sorted[0] !== 1 || sorted[sorted.length - 1] !== sorted.length) gaps += 1;
    }
    record('executions with a sequence gap in audit.raw', 0, gaps);
    // The producer client is at-least-once across a broker failure: a batch whose acknowledgement was
    // lost is sent again with the same event ids (docs/producer.md). That is information, not a
    // difference; the tokenizer must copy each raw record exactly once, and the hot store collapse them.
    say(`info: event ids the producer sent more than once (broker restart): ${[...raw.ids.values()].filter((n) => n > 1).length}`);
    record('audit.raw events missing from audit.events (read committed)', 0, [...raw.ids.keys()].filter((id) => !events.ids.has(id)).length);
    record('events whose copies in audit.events differ from audit.raw (exactly once)', 0, [...raw.ids].filter(([id, n]) => (events.ids.get(id) ?? 0) !== n).length);
    record('audit.events events not in audit.raw', 0, [...events.ids.keys()].filter((id) => !raw.ids.has(id)).length);

    const clickhouse = createClickHouse(endpoints.clickhouse);
    try {
      // Rows per event id, as queries see them (FINAL: copies with the same sorting key collapsed) and as stored.
      const rowsPerEvent = async (final: boolean) => {
        const rs = await clickhouse.query({ query: `SELECT event_id, count() AS n FROM ${database}.events${final ? ' FINAL' : ''} GROUP BY event_id`, format: 'JSONEachRow' });
        return new Map((await rs.json<{ event_id: string; n: number | string }>()).map((r) => [r.event_id, Number(r.n)]));
      };
      const stored = await rowsPerEvent(true);
      record('audit.raw events missing from the hot store', 0, [...raw.ids.keys()].filter((id) => !stored.has(id)).length);
      // A redelivered event has the same sorting key and collapses under FINAL: more than one row here is a copy that never will.
      record('event ids on more than one row with FINAL (copies that do not collapse)', 0, [...stored.values()].filter((n) => n > 1).length);
      record('hot store events that are not in audit.raw', 0, [...stored.keys()].filter((id) => !raw.ids.has(id)).length);
      // The hot store is at-least-once (a crash between insert and commit writes a batch again): information, not a difference.
      const written = await rowsPerEvent(false);
      say(`info: events written to the hot store more than once, not merged yet (no FINAL): ${[...written.values()].filter((n) => n > 1).length} ids, ${[...written.values()].reduce((sum, n) => sum + n - 1, 0)} extra rows`);
      for (const workflowId of [...new Set(summary.outcomes.map((o) => o.workflowId))].sort()) {
        const expected = new Set(summary.outcomes.filter((o) => o.workflowId === workflowId && o.status === 'failed').map((o) => o.executionId));
        const rows = await failedExecutions(clickhouse, database, { workflowId, sinceSeconds: 86_400, limit: 100_000 });
        const got = new Set(rows.map((r) => r.execution_id));
        record(`query failed --workflow ${workflowId}: rows`, expected.size, rows.length);
        record(`query failed --workflow ${workflowId}: expected ids missing`, 0, [...expected].filter((id) => !got.has(id)).length);
      }
    } finally {
      await clickhouse.close();
    }
    // Archive: every execution indexed (its objects hold its events), and the digest chains verify.
    const archived = await (async () => {
      const ch = createClickHouse(endpoints.clickhouse);
      try {
        const rs = await ch.query({ query: `SELECT uniqExact(execution_id) AS n FROM ${database}.archive_index`, format: 'JSONEachRow' });
        return Number((await rs.json<{ n: number | string }>())[0]?.n ?? 0);
      } finally {
        await ch.close();
      }
    })();
    record('executions in the archive index', raw.sequences.size, archived);
    // Alerts: each failed execution that touched PII alerts security once (by idempotency id); the throttle
    // of the shipped rule (1 m) may merge several into one alert, so count the executions the alerts name.
    const securityIds = new Set(receiver.on('/security').map((r) => String(r.headers['idempotency-key'])));
    // Every demo input carries PII, so each failed execution must have reached security once, the outage notwithstanding.
    const failedIds = summary.outcomes.filter((o) => o.status === 'failed').map((o) => o.executionId);
    const alerted = failedIds.filter((id) => receiver.on('/security').some((r) => r.body.includes(id)));
    record('failed executions (all touched PII) alerted to security', failedIds.length, alerted.length);
    // Delivery is at least once (a crash between the POST and its commit repeats it with the same id); receivers drop repeats by id.
    say(`info: security requests repeating an idempotency id already received: ${receiver.on('/security').length - securityIds.size}`);
    say(`info: security alerts delivered: ${securityIds.size}; compliance: ${receiver.on('/compliance').length}`);
    const restarts = supervisor.status().map((s) => `${s.name} ${s.restarts}`);
    say(`restarts: ${restarts.join(', ')}`);
  } finally {
    await supervisor.stop();
    await receiver.down();
    await s3Proxy.close();
  }
  const verify = await new Promise<number>((resolve) => {
    const child = spawn(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'archive', 'verify', '--grace', '1'], { env: { ...stackEnv, ...serviceEnv, AUDITLINE_S3_ENDPOINT: endpointEnv.AUDITLINE_S3_ENDPOINT }, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('exit', (code) => resolve(code ?? 1));
  });
  record('archive verify exit code', 0, verify);
  const diffs = tally.filter((t) => t.expected !== t.actual);
  console.log(`\n${'CHECK'.padEnd(62)} EXPECTED     ACTUAL\n${tally.map((t) => `${t.check.padEnd(62)} ${String(t.expected).padStart(8)} ${String(t.actual).padStart(10)}${t.expected === t.actual ? '' : '  <-- DIFF'}`).join('\n')}`);
  console.log(JSON.stringify({ suite: 'reliability', duration_s: DURATION_S, rate: RATE, checks: tally.length, differences: diffs.length }));
  return diffs.length === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('reliability: failed:', err);
    process.exit(1);
  },
);
