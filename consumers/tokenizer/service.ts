import type { ClickHouseClient } from '@clickhouse/client';
import type { Admin } from 'kafkajs';
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
  pauseOnce,
  type ReadinessReport,
  requireTopics,
  startupWait,
} from '../../core/service/index.js';
import { AuditEventCodec, RegistryClient, valueSubject } from '../../schemas/index.js';
import { checkTokenizerTables } from './clickhouse.js';
import type { TokenizerConfig } from './config.js';
import { TokenKey } from './crypto.js';
import { ExecutionSubjects } from './execution-subjects.js';
import { createTokenizerHandler } from './handler.js';
import { LocalKeyWrapper, type KeyWrapper } from './key-wrapper.js';
import { SubjectKeyStore } from './key-store.js';
import { TokenizerMetrics } from './metrics.js';
import { tokenizePolicy } from './tokenize-event.js';
import { scannedFieldPaths } from '../../core/pii/scanned-fields.js';
import { PartitionTransactions } from './transactions.js';

/**
 * The tokenizer service: audit.raw -> audit.events, exactly once. Wires the
 * codecs, the key store, the per-partition transactional producers and the
 * handler into the shared batch consumer (handler-managed commits), and
 * reports readiness (group joined, ClickHouse answering).
 */
export class TokenizerService implements ManagedService {
  readonly consumerMetrics: ConsumerMetrics;
  readonly failed: Promise<Error>;
  private readonly kafka: ReturnType<typeof createKafka>;
  private readonly clickhouse: ClickHouseClient;
  private readonly admin: Admin;
  private readonly schemaRegistry: RegistryClient;
  private readonly encoder: AuditEventCodec;
  private readonly transactions: PartitionTransactions;
  private readonly consumer: BatchConsumer;

  constructor(
    private readonly config: TokenizerConfig,
    private readonly deps: { logger: Logger; registry: Registry; wrapper?: KeyWrapper },
  ) {
    const { runtime, endpoints } = config;
    this.kafka = createKafka(endpoints.kafka, deps.logger);
    this.admin = this.kafka.admin();
    this.clickhouse = createClickHouse(endpoints.clickhouse, { requestTimeoutMs: config.clickhouseTimeoutMs });
    const metrics = new TokenizerMetrics(deps.registry);
    this.consumerMetrics = new ConsumerMetrics(deps.registry, runtime.service);
    const registry = (this.schemaRegistry = new RegistryClient(endpoints.registry, { unknownIdRetryMs: runtime.unknownSchemaRetryMs }));
    this.encoder = new AuditEventCodec(registry, config.eventsTopic);
    const keys = new SubjectKeyStore(this.clickhouse, config.database, deps.wrapper ?? new LocalKeyWrapper(config.keys.masterKey), {
      previousWrappers: config.keys.previousMasterKeys.map((k) => new LocalKeyWrapper(k)),
      cacheTtlMs: config.keyCacheTtlMs,
      rotationMs: config.keyRotationMs,
      onLookup: (hits, misses, created) => metrics.keyLookup(hits, misses, created),
    });
    this.transactions = new PartitionTransactions({
      kafka: this.kafka,
      admin: this.admin,
      sourceTopic: runtime.sourceTopic,
      groupId: runtime.groupId,
      transactionalIdPrefix: config.transactionalIdPrefix,
      transactionTimeoutMs: config.transactionTimeoutMs,
      compression: config.compression,
      logger: deps.logger,
      metrics,
      ...(config.testPauseBeforeCommit > 0
        ? { beforeCommit: pauseOnce(deps.logger, 'AUDITLINE_TOKENIZER_TEST_PAUSE_BEFORE_COMMIT', 'test hook: transaction sent, pausing before its commit', config.testPauseBeforeCommit) }
        : {}),
    });
    const dlq = new DlqPublisher(this.kafka, { topic: runtime.dlqTopic, service: runtime.service });
    const handler = createTokenizerHandler({
      codec: new AuditEventCodec(registry, runtime.sourceTopic),
      encoder: this.encoder,
      keys,
      executions: new ExecutionSubjects(this.clickhouse, config.database, config.executionCacheSize),
      tokenKey: new TokenKey(config.keys.tokenKey),
      policy: tokenizePolicy(config),
      paths: scannedFieldPaths(),
      transactions: this.transactions,
      dlq,
      eventsTopic: config.eventsTopic,
      metrics,
      logger: deps.logger,
    });
    this.consumer = new BatchConsumer({
      kafka: this.kafka,
      settings: runtime,
      handler,
      dlq,
      metrics: this.consumerMetrics,
      logger: deps.logger,
      commitMode: 'handler',
      // Each partition has its own transactional producer: while one waits for its commit, another is tokenized.
      partitionsConcurrently: 3,
      sessionTimeoutMs: config.sessionTimeoutMs,
      onAssignment: (assignment) => this.transactions.assign(assignment[runtime.sourceTopic] ?? []),
    });
    this.failed = this.consumer.failed;
  }

  /**
   * Waits (with backoff) until ClickHouse, the registry and Kafka answer,
   * fails fast when the tables or topics are missing (`auditline setup`),
   * registers the event schema under the events topic, waits until the
   * source topic's subject exists, then joins the group.
   */
  async start(signal: AbortSignal): Promise<void> {
    const { logger } = this.deps;
    const { runtime } = this.config;
    logger.info(
      { topic: runtime.sourceTopic, events: this.config.eventsTopic, dlq: runtime.dlqTopic, group: runtime.groupId, database: this.config.database, batchSize: runtime.batchSize },
      'tokenizer starting',
    );
    const untilReady = startupWait(runtime, signal, logger);
    await untilReady('ClickHouse', () => checkTokenizerTables(this.clickhouse, this.config.database));
    await untilReady('Kafka', () => this.checkTopics());
    await untilReady('schema registry', () => this.encoder.init());
    // The subject it reads: without it every raw record's lookup by id would fail and be dead-lettered (see the hot store).
    await untilReady('schema registry', () => this.schemaRegistry.requireSubject(valueSubject(runtime.sourceTopic)));
    await this.consumer.start();
  }

  async stop(): Promise<void> {
    await this.consumer.stop().catch((err: unknown) => this.deps.logger.warn({ err: errorMessage(err) }, 'consumer stop failed'));
    await this.transactions.close();
    await this.admin.disconnect().catch(() => undefined);
    await this.clickhouse.close();
  }

  async readiness(): Promise<ReadinessReport> {
    const clickhouse = await ping(this.clickhouse);
    return consumerReadiness({ joined: this.consumer.isJoined, groupId: this.config.runtime.groupId, clickhouse }, this.consumerMetrics);
  }

  private async checkTopics(): Promise<void> {
    const { sourceTopic, dlqTopic } = this.config.runtime;
    await requireTopics(this.admin, [sourceTopic, this.config.eventsTopic, dlqTopic]);
  }
}

async function ping(client: ClickHouseClient, timeoutMs = 2_000): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([client.ping().then((r) => r.success), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}
