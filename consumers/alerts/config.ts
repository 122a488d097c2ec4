import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { loadEndpoints, type Endpoints } from '../../core/endpoints.js';
import { parseEnv } from '../../core/env.js';
import { AuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { loadServiceRuntimeSettings, type ServiceDefaults, type ServiceRuntimeSettings } from '../../core/service/index.js';
import { TOPICS } from '../../infra/kafka/topics.js';
import { loadChannelsFile, type Channel } from './channels.js';
import { loadRulesFile, type Rule } from './rules.js';
import { TOPIC_NAME, TOPIC_NAME_RULE } from '../../core/kafka-names.js';

/** Defaults of the shared service settings for the alerts service (docs/alerts.md, "Settings"). */
export const ALERTS_DEFAULTS: ServiceDefaults = {
  groupId: 'auditline-alerts',
  sourceTopic: TOPICS.events,
  dlqTopic: TOPICS.dlq,
  // Alerts are about now: a new group starts at the end instead of firing on days of history.
  fromBeginning: false,
  batchSize: 1_000,
  // Low traffic is the normal case: a fetch waits at most this long before a batch goes on (latency per stage).
  flushMs: 20,
  metricsPort: 9467,
};

/** The alerts service's fully resolved configuration. */
export interface AlertsConfig {
  runtime: ServiceRuntimeSettings;
  endpoints: Endpoints;
  database: string;
  rulesFile: string;
  rules: Rule[];
  channels: Map<string, Channel>;
  signalsTopic: string;
  outboxTopic: string;
  tickMs: number;
  /** Timers fire this long after their deadline by the progress clock (events held back behind an open transaction). */
  timerGraceMs: number;
  idleTtlMs: number;
  sessionTimeoutMs: number;
  /** Timeout of one ClickHouse request (state and delivery records): half the session timeout, at most 20 s, so a hung request never outlives the group membership of the batch waiting on it. */
  clickhouseTimeoutMs: number;
  delivery: { horizonMs: number; backoff: { initialMs: number; maxMs: number }; timeoutMs: number; allowedTargets: string[] };
  linkBase: string | undefined;
}

const P = 'AUDITLINE_ALERTS_';
const int = (fallback: number, min: number, max: number) =>
  z.coerce.number().int('must be an integer').min(min, `must be at least ${min}`).max(max, `must be at most ${max}`).default(fallback);
const topic = (fallback: string) => z.string().default(fallback).refine((v) => TOPIC_NAME.test(v), TOPIC_NAME_RULE);
const cidr = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)(\/\d{1,3})?$/;

const own = {
  [`${P}RULES_FILE`]: z.string().default(assetPath('infra', 'alerts', 'rules.yaml')),
  [`${P}CHANNELS_FILE`]: z.string().default(assetPath('infra', 'alerts', 'channels.yaml')),
  [`${P}SIGNALS_TOPIC`]: topic(TOPICS.alertSignals),
  [`${P}OUTBOX_TOPIC`]: topic(TOPICS.alertOutbox),
  [`${P}TICK_MS`]: int(1_000, 50, 60_000),
  [`${P}TIMER_GRACE_MS`]: int(60_000, 0, 3_600_000),
  [`${P}STATE_IDLE_TTL_HOURS`]: int(72, 1, 24 * 365),
  [`${P}SESSION_TIMEOUT_MS`]: int(30_000, 6_000, 300_000),
  [`${P}DELIVERY_HORIZON_MS`]: int(86_400_000, 1_000, 30 * 86_400_000),
  [`${P}DELIVERY_BACKOFF_INITIAL_MS`]: int(1_000, 10, 3_600_000),
  [`${P}DELIVERY_BACKOFF_MAX_MS`]: int(300_000, 10, 3_600_000),
  [`${P}DELIVERY_TIMEOUT_MS`]: int(10_000, 100, 120_000),
  [`${P}ALLOWED_TARGETS`]: z
    .string()
    .default('')
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .refine((l) => l.every((c) => cidr.test(c)), 'must be a comma-separated list of IP addresses or CIDRs, e.g. 127.0.0.1/32'),
  [`${P}LINK_BASE_URL`]: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL').optional(),
};

/**
 * Names of the alerts service's own settings and of the variables its channels file (AUDITLINE_ALERTS_CHANNELS_FILE,
 * default infra/alerts/channels.yaml) names in `url_env` and `secret_env` (cli/known-settings.ts; the shared ones:
 * serviceSettingNames). A file that cannot be read adds none: loadAlertsConfig reports it.
 */
export function alertsSettingNames(env: NodeJS.ProcessEnv = process.env): string[] {
  const file = env[`${P}CHANNELS_FILE`]?.trim() || assetPath('infra', 'alerts', 'channels.yaml');
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    // loadAlertsConfig names the setting when the service needs the file.
  }
  return [...Object.keys(own), ...[...text.matchAll(/^\s*(?:url|secret)_env:\s*["']?([A-Z_][A-Z0-9_]*)/gm)].map((m) => m[1]!)];
}

/**
 * The topics the alerts service reads (its source topic, AUDITLINE_ALERTS_SIGNALS_TOPIC, AUDITLINE_ALERTS_OUTBOX_TOPIC),
 * without the rest of its settings: what `dlq redrive` may send the service's dead letters back to.
 */
export function loadAlertsTopics(env: NodeJS.ProcessEnv = process.env): { sourceTopic: string; signalsTopic: string; outboxTopic: string } {
  const runtime = loadServiceRuntimeSettings('alerts', ALERTS_DEFAULTS, env);
  const wanted = { [`${P}SIGNALS_TOPIC`]: own[`${P}SIGNALS_TOPIC`]!, [`${P}OUTBOX_TOPIC`]: own[`${P}OUTBOX_TOPIC`]! };
  const c = parseEnv(wanted, env) as Record<string, string>;
  return { sourceTopic: runtime.sourceTopic, signalsTopic: c[`${P}SIGNALS_TOPIC`]!, outboxTopic: c[`${P}OUTBOX_TOPIC`]! };
}

/** Reads and validates every alerts setting, the channels file and the rules file once; a problem names the setting, or the rule and field. */
export function loadAlertsConfig(env: NodeJS.ProcessEnv = process.env): AlertsConfig {
  const endpoints = loadEndpoints(env);
  const runtime = loadServiceRuntimeSettings('alerts', ALERTS_DEFAULTS, env);
  const c = parseEnv(own, env) as Record<string, unknown>;
  const get = <T>(name: string) => c[`${P}${name}`] as T;
  const backoff = { initialMs: get<number>('DELIVERY_BACKOFF_INITIAL_MS'), maxMs: get<number>('DELIVERY_BACKOFF_MAX_MS') };
  if (backoff.maxMs < backoff.initialMs) throw invalid(`${P}DELIVERY_BACKOFF_MAX_MS`, `must be at least ${P}DELIVERY_BACKOFF_INITIAL_MS (${backoff.initialMs})`);
  const sessionTimeoutMs = get<number>('SESSION_TIMEOUT_MS');
  if (runtime.retry.maxMs * 2 > sessionTimeoutMs) throw invalid(`${P}RETRY_MAX_MS`, `must be at most half of ${P}SESSION_TIMEOUT_MS (${sessionTimeoutMs})`);
  const signalsTopic = get<string>('SIGNALS_TOPIC');
  const outboxTopic = get<string>('OUTBOX_TOPIC');
  if (new Set([runtime.sourceTopic, signalsTopic, outboxTopic]).size !== 3) throw invalid(`${P}SIGNALS_TOPIC`, `${P}TOPIC, ${P}SIGNALS_TOPIC and ${P}OUTBOX_TOPIC must differ`);
  const channels = loadChannelsFile(get<string>('CHANNELS_FILE'), env);
  const rulesFile = get<string>('RULES_FILE');
  const rules = loadRulesFile(rulesFile, new Set(channels.keys()));
  return {
    runtime,
    endpoints,
    database: endpoints.clickhouse.database,
    rulesFile,
    rules,
    channels,
    signalsTopic,
    outboxTopic,
    tickMs: get<number>('TICK_MS'),
    timerGraceMs: get<number>('TIMER_GRACE_MS'),
    idleTtlMs: get<number>('STATE_IDLE_TTL_HOURS') * 3_600_000,
    sessionTimeoutMs,
    clickhouseTimeoutMs: Math.min(20_000, Math.floor(sessionTimeoutMs / 2)),
    delivery: { horizonMs: get<number>('DELIVERY_HORIZON_MS'), backoff, timeoutMs: get<number>('DELIVERY_TIMEOUT_MS'), allowedTargets: get<string[]>('ALLOWED_TARGETS') },
    linkBase: get<string | undefined>('LINK_BASE_URL'),
  };
}

function invalid(setting: string, reason: string): AuditlineError {
  return new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: ${reason}`, { details: { setting } });
}
