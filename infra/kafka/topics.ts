import kafkajs, { type Admin } from 'kafkajs';

import { AuditlineError } from '../../core/errors.js';
const { ConfigResourceTypes } = kafkajs;
import type { RetentionSettings } from '../retention.js';

/** Names of the Auditline topics (docs/topics.md). */
export const TOPICS = {
  raw: 'audit.raw',
  events: 'audit.events',
  dlq: 'audit.dlq',
  // Alerts service (docs/alerts.md): events re-keyed by rule key, and the durable delivery outbox.
  alertSignals: 'audit.alerts.signals',
  alertOutbox: 'audit.alerts.outbox',
} as const;

export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  /** Topic-level configs, all as strings as Kafka reports them. */
  config: Record<string, string>;
}

export interface TopicLayout {
  /** Partitions of audit.raw and audit.events: the parallelism ceiling of every consumer group. */
  partitions: number;
  /** Partitions of audit.dlq (low volume). */
  dlqPartitions: number;
  replicationFactor: number;
  /** Optional prefix, e.g. for isolated test topics. */
  prefix?: string;
}

export const DEFAULT_LAYOUT: TopicLayout = { partitions: 6, dlqPartitions: 1, replicationFactor: 1 };

/** Replication factor used on a cluster when none is configured: three copies, or one per broker on a smaller cluster. */
export const DEFAULT_REPLICATION_FACTOR = 3;

/**
 * The layout for the cluster `admin` talks to: the configured replication
 * factor (AUDITLINE_KAFKA_REPLICATION_FACTOR), else min(3, brokers), so a
 * production cluster gets three copies and min.insync.replicas 2 while the
 * one-broker local stack gets one. A factor above the broker count is
 * CONFIG_INVALID (the broker would refuse the topics).
 */
export async function clusterLayout(admin: Admin, replicationFactor: number | undefined, base: TopicLayout = DEFAULT_LAYOUT): Promise<TopicLayout & { brokers: number }> {
  const { brokers } = await admin.describeCluster();
  if (replicationFactor !== undefined && replicationFactor > brokers.length) {
    throw new AuditlineError('CONFIG_INVALID', `invalid setting AUDITLINE_KAFKA_REPLICATION_FACTOR: ${replicationFactor} copies need as many brokers, the cluster has ${brokers.length}`, {
      details: { setting: 'AUDITLINE_KAFKA_REPLICATION_FACTOR' },
    });
  }
  return { ...base, replicationFactor: replicationFactor ?? Math.min(DEFAULT_REPLICATION_FACTOR, brokers.length), brokers: brokers.length };
}

/**
 * Record limit of audit.dlq (`max.message.bytes`), twice the broker default: a dead letter is its source record
 * byte for byte plus the DLQ headers, so a source record near the 1 MiB default limit (a raw event that the
 * tokenizer could not shrink below it) would otherwise be refused by the DLQ, retried forever, and stall its partition.
 */
export const DLQ_MAX_MESSAGE_BYTES = 2 * 1024 * 1024;

/**
 * The Auditline topics derived from the retention settings. Retention of
 * every topic comes from the settings file, never from this code.
 */
export function auditTopics(retention: RetentionSettings, layout: TopicLayout = DEFAULT_LAYOUT): TopicSpec[] {
  const minIsr = String(Math.min(2, layout.replicationFactor));
  const base = (name: string, partitions: number): TopicSpec => {
    const ms = retention.topicRetentionMs[name];
    if (ms === undefined) throw new Error(`retention settings ${retention.file} define no retention for topic ${name}`);
    return {
      name: `${layout.prefix ?? ''}${name}`,
      partitions,
      replicationFactor: layout.replicationFactor,
      config: {
        'cleanup.policy': 'delete',
        'retention.ms': String(ms),
        'min.insync.replicas': minIsr,
        // Producers compress; the broker keeps their batches as they are.
        'compression.type': 'producer',
        // Producer timestamps are event times; brokers must not rewrite them.
        'message.timestamp.type': 'CreateTime',
      },
    };
  };
  return [
    base(TOPICS.raw, layout.partitions),
    base(TOPICS.events, layout.partitions),
    withConfig(base(TOPICS.dlq, layout.dlqPartitions), { 'max.message.bytes': String(DLQ_MAX_MESSAGE_BYTES) }),
    base(TOPICS.alertSignals, layout.partitions),
    base(TOPICS.alertOutbox, layout.partitions),
  ];
}

function withConfig(spec: TopicSpec, config: Record<string, string>): TopicSpec {
  return { ...spec, config: { ...spec.config, ...config } };
}

export interface ApplyResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  /** Topics with more partitions than the spec (partitions can never shrink), or fewer replicas (setup does not reassign). */
  warnings: string[];
}

/**
 * Makes the cluster match the specs: creates missing topics, raises
 * partition counts, and rewrites configs that differ, except that a
 * `min.insync.replicas` set higher than the spec's is kept (setup never
 * weakens durability an operator chose). Running it again changes nothing.
 */
export async function applyTopics(admin: Admin, specs: TopicSpec[]): Promise<ApplyResult> {
  const result: ApplyResult = { created: [], updated: [], unchanged: [], warnings: [] };
  const existing = new Set(await admin.listTopics());
  const missing = specs.filter((s) => !existing.has(s.name));
  if (missing.length > 0) {
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((s) => ({
        topic: s.name,
        numPartitions: s.partitions,
        replicationFactor: s.replicationFactor,
        configEntries: Object.entries(s.config).map(([name, value]) => ({ name, value })),
      })),
    });
    result.created.push(...missing.map((s) => s.name));
  }
  const present = specs.filter((s) => existing.has(s.name));
  if (present.length === 0) return result;

  const metadata = await admin.fetchTopicMetadata({ topics: present.map((s) => s.name) });
  const partitionCount = new Map(metadata.topics.map((t) => [t.name, t.partitions.length]));
  const replicaCount = new Map(metadata.topics.map((t) => [t.name, Math.min(...t.partitions.map((p) => p.replicas.length))]));
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: present.map((s) => ({ type: ConfigResourceTypes.TOPIC, name: s.name, configNames: Object.keys(s.config) })),
  });
  const current = new Map(
    described.resources.map((r) => [r.resourceName, Object.fromEntries(r.configEntries.map((e) => [e.configName, e.configValue]))]),
  );
  for (const spec of present) {
    let changed = false;
    const have = partitionCount.get(spec.name) ?? 0;
    if (have < spec.partitions) {
      await admin.createPartitions({ topicPartitions: [{ topic: spec.name, count: spec.partitions }] });
      changed = true;
    } else if (have > spec.partitions) {
      result.warnings.push(`${spec.name} has ${have} partitions, more than the ${spec.partitions} configured; partitions cannot shrink`);
    }
    const replicas = replicaCount.get(spec.name) ?? spec.replicationFactor;
    if (replicas < spec.replicationFactor) {
      result.warnings.push(`${spec.name} has ${replicas} replica(s) per partition, fewer than the ${spec.replicationFactor} configured; raise it with a partition reassignment (kafka-reassign-partitions)`);
    }
    const cfg = current.get(spec.name) ?? {};
    const wanted = { ...spec.config };
    const minIsr = 'min.insync.replicas';
    if (wanted[minIsr] !== undefined && Number(cfg[minIsr]) > Number(wanted[minIsr])) wanted[minIsr] = cfg[minIsr]!;
    if (Object.entries(wanted).some(([k, v]) => cfg[k] !== v)) {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: spec.name,
            configEntries: Object.entries(wanted).map(([name, value]) => ({ name, value })),
          },
        ],
      });
      changed = true;
    }
    (changed ? result.updated : result.unchanged).push(spec.name);
  }
  return result;
}

/** Reads back partitions and configs of topics, e.g. for `retention plan` and tests. */
export async function describeTopics(admin: Admin, names: string[]): Promise<Map<string, { partitions: number; config: Record<string, string> }>> {
  const metadata = await admin.fetchTopicMetadata({ topics: names });
  const described = await admin.describeConfigs({
    includeSynonyms: false,
    resources: names.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
  });
  const out = new Map<string, { partitions: number; config: Record<string, string> }>();
  for (const t of metadata.topics) {
    const r = described.resources.find((x) => x.resourceName === t.name);
    out.set(t.name, {
      partitions: t.partitions.length,
      config: Object.fromEntries((r?.configEntries ?? []).map((e) => [e.configName, e.configValue])),
    });
  }
  return out;
}
