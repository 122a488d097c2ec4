import type { ClickHouseClient } from '@clickhouse/client';
import { type Admin, type Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka } from '../../core/clients/kafka.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import {
  BatchConsumer,
  ConsumerMetrics,
  consumerReadiness,
  DlqPublisher,
  type ManagedService,
  type ReadinessReport,
  requireTopics,
  startupWait,
} from '../../core/service/index.js';
import { AuditEventCodec, RegistryClient, valueSubject } from '../../schemas/index.js';
import type { AlertsConfig } from './config.js';
import { DeliveryWorker } from './delivery.js';
import { AlertsMetrics } from './metrics.js';
import { PiiDetector } from './pii.js';
import { RuleStage } from './rule-stage.js';
import { StageProgressReader } from './progress.js';
import { createSignalStageHandler } from './signal-stage.js';
import { TargetPolicy } from './ssrf.js';
import { AlertStore } from './store.js';
import { Murmur2Partitioner } from '../../core/clients/partitioner.js';

/** Consumer groups of the three stages: `<group>` reads audit.events, `<group>.rules` the signals, `<group>.delivery` the outbox. */
export function alertGroups(groupId: string): { events: string; rules: string; delivery: string } {
  return { events: groupId, rules: `${groupId}.rules`, delivery: `${groupId}.delivery` };
}

/**
 * The alerts service (docs/alerts.md): audit.events -> signals (stage 1) ->
 * rule state and alerts (stage 2, timers on a clock tick) -> outbox ->
 * signed webhooks (delivery). All three run in each instance, each as its
 * own consumer group member, so instances scale every stage together.
 */
export class AlertsService implements ManagedService {
  readonly failed: Promise<Error>;
  readonly metrics: AlertsMetrics;
  private readonly kafka: ReturnType<typeof createKafka>;
  private readonly clickhouse: ClickHouseClient;
  private readonly admin: Admin;
  private readonly producer: Producer;
  private readonly store: AlertStore;
  private readonly dlq: DlqPublisher;
  private readonly signalConsumer: BatchConsumer;
  private readonly schemaRegistry: RegistryClient;
  private readonly ruleConsumer: BatchConsumer;
  private readonly ruleStage: RuleStage;
  private readonly delivery: DeliveryWorker;
  private readonly consumerMetrics: ConsumerMetrics;
  /** Stage 2's batch consumer metrics (`auditline_alerts_rules_*`). */
  private readonly rulesMetrics: ConsumerMetrics;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly config: AlertsConfig,
    private readonly deps: { logger: Logger; registry: Registry },
  ) {
    const { runtime, endpoints } = config;
    const groups = alertGroups(runtime.groupId);
    this.kafka = createKafka(endpoints.kafka, deps.logger);
    this.admin = this.kafka.admin();
    this.clickhouse = createClickHouse(endpoints.clickhouse, { requestTimeoutMs: config.clickhouseTimeoutMs });
    this.metrics = new AlertsMetrics(deps.registry);
    this.consumerMetrics = new ConsumerMetrics(deps.registry, runtime.service);
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: Murmur2Partitioner });
    this.store = new AlertStore(this.clickhouse, config.database, { group: groups.rules, topic: config.signalsTopic });
    this.dlq = new DlqPublisher(this.kafka, { topic: runtime.dlqTopic, service: runtime.service });
    this.signalConsumer = new BatchConsumer({
      kafka: this.kafka,
      settings: runtime,
      handler: createSignalStageHandler({
        codec: new AuditEventCodec((this.schemaRegistry = new RegistryClient(endpoints.registry, { unknownIdRetryMs: runtime.unknownSchemaRetryMs })), runtime.sourceTopic),
        rules: config.rules,
        detector: new PiiDetector(),
        producer: this.producer,
        signalsTopic: config.signalsTopic,
        metrics: this.metrics,
      }),
      dlq: this.dlq,
      metrics: this.consumerMetrics,
      logger: deps.logger,
      sessionTimeoutMs: config.sessionTimeoutMs,
      partitionsConcurrently: 4,
    });
    const progress = new StageProgressReader(this.admin, { sourceTopic: runtime.sourceTopic, signalGroup: groups.events, fromBeginning: runtime.fromBeginning, signalsTopic: config.signalsTopic });
    this.ruleStage = new RuleStage({
      rules: config.rules,
      store: this.store,
      producer: this.producer,
      dlq: this.dlq,
      outboxTopic: config.outboxTopic,
      idleTtlMs: config.idleTtlMs,
      ...(config.linkBase ? { linkBase: config.linkBase } : {}),
      metrics: this.metrics,
      logger: deps.logger,
      progress: () => progress.read(),
      graceMs: config.timerGraceMs,
    });
    this.ruleConsumer = new BatchConsumer({
      kafka: this.kafka,
      // The signals topic is internal: a new group reads all of it, or signals written before it joined are lost.
      settings: { ...runtime, groupId: groups.rules, sourceTopic: config.signalsTopic, fromBeginning: true },
      handler: this.ruleStage.handler(),
      dlq: this.dlq,
      metrics: (this.rulesMetrics = new ConsumerMetrics(deps.registry, `${runtime.service}_rules`)),
      logger: deps.logger,
      sessionTimeoutMs: config.sessionTimeoutMs,
      onAssignment: (assignment) => this.ruleStage.assign(assignment[config.signalsTopic] ?? []),
      // Each partition's batch waits for its ClickHouse write: partitions proceed side by side.
      partitionsConcurrently: 4,
    });
    this.delivery = new DeliveryWorker({
      kafka: this.kafka,
      groupId: groups.delivery,
      outboxTopic: config.outboxTopic,
      fromBeginning: true,
      channels: config.channels,
      policy: new TargetPolicy(config.delivery.allowedTargets),
      store: this.store,
      dlq: this.dlq,
      metrics: this.metrics,
      logger: deps.logger,
      horizonMs: config.delivery.horizonMs,
      backoff: config.delivery.backoff,
      timeoutMs: config.delivery.timeoutMs,
      sessionTimeoutMs: config.sessionTimeoutMs,
    });
    // Any stage that stops for good stops the service (a process manager restarts it): no stage may stop silently.
    this.failed = Promise.race([this.signalConsumer.failed, this.ruleConsumer.failed, this.delivery.failed]);
  }

  /** Waits (with backoff) for ClickHouse and Kafka, fails fast on missing tables or topics, then starts the stages and the clock. */
  async start(signal: AbortSignal): Promise<void> {
    const { logger } = this.deps;
    const { runtime } = this.config;
    logger.info(
      { topic: runtime.sourceTopic, signals: this.config.signalsTopic, outbox: this.config.outboxTopic, group: runtime.groupId, rules: this.config.rules.length, channels: [...this.config.channels.keys()], database: this.config.database },
      'alerts starting',
    );
    const untilReady = startupWait(runtime, signal, logger);
    await untilReady('ClickHouse', () => this.store.checkTables());
    await untilReady('Kafka', () => requireTopics(this.admin, [runtime.sourceTopic, runtime.dlqTopic, this.config.signalsTopic, this.config.outboxTopic]));
    // Reached before the first record: a registry that is down, a wrong URL, or one without the subject (empty, still
    // loading) waits here, logged, instead of dead-lettering every record as SCHEMA_NOT_FOUND.
    await untilReady('schema registry', () => this.schemaRegistry.requireSubject(valueSubject(runtime.sourceTopic)));
    await this.producer.connect();
    await this.dlq.connect();
    await this.delivery.start();
    await this.ruleConsumer.start();
    await this.signalConsumer.start();
    this.timer = setInterval(() => void this.ruleStage.tick(), this.config.tickMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    const warn = (what: string) => (err: unknown) => this.deps.logger.warn({ err: errorMessage(err) }, `${what} stop failed`);
    await this.signalConsumer.stop().catch(warn('events consumer'));
    await this.ruleConsumer.stop().catch(warn('signals consumer'));
    await this.delivery.stop().catch(warn('delivery'));
    await this.producer.disconnect().catch(warn('producer'));
    await this.dlq.disconnect();
    await this.admin.disconnect().catch(() => undefined);
    await this.clickhouse.close();
  }

  /**
   * /readyz: all three stages joined their groups and ClickHouse answers; that is `auditline_alerts_ready`.
   * `auditline_alerts_rules_ready` is stage 2's own: its group joined and ClickHouse (its state store) answering.
   */
  async readiness(): Promise<ReadinessReport> {
    const clickhouse = await this.store.ping();
    this.rulesMetrics.setReady(this.ruleConsumer.isJoined && clickhouse);
    const joined = this.signalConsumer.isJoined && this.ruleConsumer.isJoined && this.delivery.isJoined;
    return consumerReadiness({ joined, groupId: `${this.config.runtime.groupId} (and .rules, .delivery)`, clickhouse }, this.consumerMetrics);
  }
}
