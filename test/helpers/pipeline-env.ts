import { SERVICES } from '../../cli/commands/run.js';
import type { SupervisedService } from '../../cli/pipeline/supervisor.js';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka } from '../../core/clients/kafka.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { settingsPrefix } from '../../core/service/settings.js';
import { migrate } from '../../infra/clickhouse/migrate.js';
import { loadRetention } from '../../infra/retention.js';
import { migrationVariables } from '../../infra/setup.js';
import { createTestTopics } from './kafka.js';
import { uniqueName } from './names.js';
import { freePort } from './ports.js';
import { testKeys } from './tokenizer-fixtures.js';

/** Names of one isolated pipeline: its own topics, consumer groups and database on the shared services. */
export interface PipelineNames {
  prefix: string;
  raw: string;
  events: string;
  dlq: string;
  database: string;
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
  drop(): Promise<void>;
}

/** Per-service settings (without the AUDITLINE_<SERVICE>_ prefix) that put a service on the pipeline's names; fast timings for tests. */
const SERVICE_SETTINGS: Record<string, (n: PipelineNames) => Record<string, string>> = {
  tokenizer: (n) => ({ TOPIC: n.raw, EVENTS_TOPIC: n.events, DLQ_TOPIC: n.dlq, GROUP_ID: `${n.prefix}-tokenizer`, FLUSH_MS: '100', SESSION_TIMEOUT_MS: '6000' }),
  hotstore: (n) => ({ TOPIC: n.events, DLQ_TOPIC: n.dlq, GROUP_ID: `${n.prefix}-hotstore`, FLUSH_MS: '100' }),
};

export async function createPipelineEnv(label: string, options: { services?: string[]; partitions?: number } = {}): Promise<PipelineEnv> {
  const endpoints = loadEndpoints();
  const prefix = uniqueName(`it-${label}`);
  const names: PipelineNames = { prefix, raw: `${prefix}.raw`, events: `${prefix}.events`, dlq: `${prefix}.dlq`, database: prefix.replace(/[^A-Za-z0-9_]/g, '_') };
  const kafka = createKafka(endpoints.kafka);
  const partitions = options.partitions ?? 3;
  await createTestTopics(kafka, [
    { name: names.raw, partitions },
    { name: names.events, partitions },
    { name: names.dlq, partitions: 1 },
  ]);
  const clickhouse = createClickHouse(endpoints.clickhouse);
  try {
    await migrate(clickhouse, { database: names.database, variables: migrationVariables(loadRetention()) });
  } finally {
    await clickhouse.close();
  }
  const keys = testKeys();
  const env: Record<string, string> = {
    AUDITLINE_CLICKHOUSE_DATABASE: names.database,
    AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey,
    AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey,
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
    async drop() {
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteGroups(services.map((s) => env[`${settingsPrefix(s.name)}GROUP_ID`]!)).catch(() => undefined);
      await admin.deleteTopics({ topics: [names.raw, names.events, names.dlq] }).catch(() => undefined);
      await admin.disconnect();
      const ch = createClickHouse(endpoints.clickhouse);
      await ch.command({ query: `DROP DATABASE IF EXISTS ${names.database}` }).catch(() => undefined);
      await ch.close();
    },
  };
}
