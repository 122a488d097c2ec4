import { SERVICES } from '../../cli/commands/run.js';
import type { SupervisedService } from '../../cli/pipeline/supervisor.js';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { settingsPrefix } from '../../core/service/settings.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { loadRetention } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { writeAlertFiles } from './alerts-fixtures.js';
import { createArchiveBucket, signingKeyPem } from './archiver-stack.js';
import { createTestTopics } from './kafka.js';
import { registerTestSubjects } from './subjects.js';
import { uniqueName } from './names.js';
import { freePort } from './ports.js';
import { tempDir } from './temp-dir.js';
import { testKeys } from './tokenizer-fixtures.js';

/** Names of one isolated pipeline: its own topics, consumer groups and database on the shared services. */
export interface PipelineNames {
  prefix: string;
  raw: string;
  events: string;
  dlq: string;
  signals: string;
  outbox: string;
  database: string;
  bucket: string;
}

/**
 * A whole pipeline isolated from every other test and from `npm start`:
 * unique topics, groups and database, fresh keys, free metrics ports. `env`
 * configures the services and the CLI commands alike.
 */
export interface PipelineEnv {
  names: PipelineNames;
  env: Record<string, string>;
  services: SupervisedService[];
  keys: { masterKey: string; tokenKey: string };
  /** The archiver's signing key pair (PEM). */
  archiveKeys: { privatePem: string; publicPem: string };
  drop(): Promise<void>;
}

export interface PipelineEnvOptions {
  services?: string[];
  partitions?: number;
  /** Base URL of the webhook receiver the alert channels `security` and `compliance` post to (`<url>/<channel>`). */
  webhookUrl?: string;
  /** Alert rules (YAML); default: a failed execution that touched PII -> security. */
  rulesYaml?: string;
  /** Secret both channels sign with. */
  webhookSecret?: string;
}

export const E2E_RULES = `rules:
  - name: failed-execution-touched-pii
    kind: match
    severity: critical
    channels: [security]
    where: { event: ExecutionFinished, status: failed }
    touched_pii: true
`;

/** Per-service settings (without the AUDITLINE_<SERVICE>_ prefix) that put a service on the pipeline's names; fast timings for tests. */
const SERVICE_SETTINGS: Record<string, (n: PipelineNames) => Record<string, string>> = {
  tokenizer: (n) => ({ TOPIC: n.raw, EVENTS_TOPIC: n.events, DLQ_TOPIC: n.dlq, GROUP_ID: `${n.prefix}-tokenizer`, FLUSH_MS: '100', SESSION_TIMEOUT_MS: '6000' }),
  hotstore: (n) => ({ TOPIC: n.events, DLQ_TOPIC: n.dlq, GROUP_ID: `${n.prefix}-hotstore`, FLUSH_MS: '100' }),
  archiver: (n) => ({ TOPIC: n.events, DLQ_TOPIC: n.dlq, GROUP_ID: `${n.prefix}-archiver`, FLUSH_MS: '100', ROLL_MS: '1000', DIGEST_INTERVAL_MS: '2000', SESSION_TIMEOUT_MS: '6000' }),
  alerts: (n) => ({
    TOPIC: n.events,
    DLQ_TOPIC: n.dlq,
    GROUP_ID: `${n.prefix}-alerts`,
    SIGNALS_TOPIC: n.signals,
    OUTBOX_TOPIC: n.outbox,
    FROM_BEGINNING: 'true',
    TICK_MS: '200',
    FLUSH_MS: '50',
    SESSION_TIMEOUT_MS: '6000',
    DELIVERY_BACKOFF_INITIAL_MS: '300',
    DELIVERY_BACKOFF_MAX_MS: '1500',
    ALLOWED_TARGETS: '127.0.0.1/32',
  }),
};

export async function createPipelineEnv(label: string, options: PipelineEnvOptions = {}): Promise<PipelineEnv> {
  const endpoints = loadEndpoints();
  const prefix = uniqueName(`it-${label}`);
  const names: PipelineNames = {
    prefix,
    raw: `${prefix}.raw`,
    events: `${prefix}.events`,
    dlq: `${prefix}.dlq`,
    signals: `${prefix}.signals`,
    outbox: `${prefix}.outbox`,
    database: prefix.replace(/[^A-Za-z0-9_]/g, '_'),
    bucket: await createArchiveBucket(true),
  };
  const kafka = createKafka(endpoints.kafka);
  const partitions = options.partitions ?? 3;
  await createTestTopics(kafka, [
    { name: names.raw, partitions },
    { name: names.events, partitions },
    { name: names.dlq, partitions: 1 },
    { name: names.signals, partitions },
    { name: names.outbox, partitions: 1 },
  ]);
  await registerTestSubjects([names.raw, names.events]);
  const clickhouse = createClickHouse(endpoints.clickhouse);
  try {
    await migrate(clickhouse, { database: names.database, variables: migrationVariables(loadRetention()) });
  } finally {
    await clickhouse.close();
  }
  const keys = testKeys();
  const archiveKeys = signingKeyPem();
  const files = writeAlertFiles(tempDir('auditline-pipeline-alerts'), options.rulesYaml ?? E2E_RULES, {
    security: { url: `${options.webhookUrl ?? 'http://127.0.0.1:9'}/security`, secretEnv: 'E2E_WEBHOOK_SECRET' },
    compliance: { url: `${options.webhookUrl ?? 'http://127.0.0.1:9'}/compliance`, secretEnv: 'E2E_WEBHOOK_SECRET' },
  });
  const env: Record<string, string> = {
    AUDITLINE_CLICKHOUSE_DATABASE: names.database,
    AUDITLINE_S3_BUCKET: names.bucket,
    AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey,
    AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey,
    AUDITLINE_ARCHIVER_SIGNING_KEY: archiveKeys.privatePem,
    AUDITLINE_ARCHIVER_PUBLIC_KEY: archiveKeys.publicPem,
    AUDITLINE_ALERTS_RULES_FILE: files.rules,
    AUDITLINE_ALERTS_CHANNELS_FILE: files.channels,
    E2E_WEBHOOK_SECRET: options.webhookSecret ?? 'e2e-webhook-secret-0123456789',
  };
  const services: SupervisedService[] = [];
  for (const name of options.services ?? Object.keys(SERVICES)) {
    const settings = SERVICE_SETTINGS[name];
    if (!settings) throw new Error(`pipeline-env: no test settings for service ${name}; add them to SERVICE_SETTINGS`);
    const port = await freePort();
    const p = settingsPrefix(name);
    Object.assign(env, Object.fromEntries(Object.entries(settings(names)).map(([k, v]) => [`${p}${k}`, v])), {
      [`${p}METRICS_HOST`]: '127.0.0.1',
      [`${p}METRICS_PORT`]: String(port),
      [`${p}RETRY_INITIAL_MS`]: '100',
      [`${p}RETRY_MAX_MS`]: '2000',
    });
    services.push({ name, metricsPort: port });
  }
  return {
    names,
    env,
    services,
    keys,
    archiveKeys,
    async drop() {
      const admin = kafka.admin();
      await admin.connect();
      const groups = services.map((s) => env[`${settingsPrefix(s.name)}GROUP_ID`]!);
      await admin.deleteGroups([...groups, ...groups.filter((g) => g.endsWith('-alerts')).flatMap((g) => [`${g}.rules`, `${g}.delivery`])]).catch(() => undefined);
      await admin.deleteTopics({ topics: [names.raw, names.events, names.dlq, names.signals, names.outbox] }).catch(() => undefined);
      await admin.disconnect();
      const ch = createClickHouse(endpoints.clickhouse);
      await ch.command({ query: `DROP DATABASE IF EXISTS ${names.database}` }).catch(() => undefined);
      await ch.close();
    },
  };
}
