import type { ClickHouseClient } from '@clickhouse/client';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Registry } from 'prom-client';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka } from '../../core/clients/kafka.js';
import { createS3 } from '../../core/clients/s3.js';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { BatchConsumer, ConsumerMetrics, consumerReadiness, DlqPublisher, type ManagedService, type ReadinessReport, requireTopicsOnce, startupWait } from '../../core/service/index.js';
import { RegistryClient, valueSubject } from '../../schemas/index.js';
import { Archiver } from './archiver.js';
import type { ArchiverConfig } from './config.js';
import { DigestChain } from './digest-chain.js';
import { ArchiveIndex } from './index-store.js';
import { ArchiverMetrics } from './metrics.js';
import { ObjectStore } from './object-store.js';
import { S3Readiness } from './s3-readiness.js';
import { WriterSchemas } from './writer-schemas.js';

/**
 * The archiver service: audit.events -> S3 (Avro container files under
 * Object Lock, signed digests) and the execution index in ClickHouse.
 * Wires the Archiver into the shared batch consumer in `handler` commit mode.
 */
export class ArchiverService implements ManagedService {
  readonly consumerMetrics: ConsumerMetrics;
  readonly failed: Promise<Error>;
  readonly archiver: Archiver;
  private readonly kafka: ReturnType<typeof createKafka>;
  private readonly clickhouse: ClickHouseClient;
  private readonly s3: S3Client;
  private readonly store: ObjectStore;
  private readonly index: ArchiveIndex;
  private readonly dlq: DlqPublisher;
  private readonly consumer: BatchConsumer;
  private readonly schemaRegistry: RegistryClient;
  private readonly s3Readiness: S3Readiness;

  constructor(
    private readonly config: ArchiverConfig,
    private readonly deps: { logger: Logger; registry: Registry },
  ) {
    const { runtime, endpoints } = config;
    this.kafka = createKafka(endpoints.kafka, deps.logger);
    this.clickhouse = createClickHouse(endpoints.clickhouse);
    this.s3 = createS3(endpoints.s3);
    this.store = new ObjectStore(this.s3, config.bucket);
    this.s3Readiness = new S3Readiness(this.store);
    this.index = new ArchiveIndex(this.clickhouse, config.database);
    this.dlq = new DlqPublisher(this.kafka, { topic: runtime.dlqTopic, service: runtime.service });
    this.consumerMetrics = new ConsumerMetrics(deps.registry, runtime.service);
    const metrics = new ArchiverMetrics(deps.registry);
    let consumer: BatchConsumer | undefined;
    this.archiver = new Archiver(
      { ...config, retry: runtime.retry },
      {
        schemas: new WriterSchemas((this.schemaRegistry = new RegistryClient(endpoints.registry, { unknownIdRetryMs: runtime.unknownSchemaRetryMs }))),
        store: this.store,
        index: this.index,
        chain: new DigestChain(this.store, { topic: runtime.sourceTopic, signingKey: config.signingKey, retentionDays: config.retentionDays, objectLock: config.objectLock, index: this.index, logger: deps.logger }),
        dlq: this.dlq,
        commit: (topic, partition, offset) => consumer!.commitOffset(topic, partition, offset),
        committed: (partition) => consumer!.committedOffset(partition),
        logger: deps.logger,
        metrics,
      },
    );
    consumer = this.consumer = new BatchConsumer({
      kafka: this.kafka,
      settings: runtime,
      handler: this.archiver.handler,
      commitMode: 'handler',
      sessionTimeoutMs: config.sessionTimeoutMs,
      dlq: this.dlq,
      metrics: this.consumerMetrics,
      logger: deps.logger,
      onAssignment: (assignment) => this.archiver.assigned(assignment[runtime.sourceTopic] ?? []),
    });
    this.failed = this.consumer.failed;
  }

  /** Waits until ClickHouse, S3 and Kafka answer, fails fast on missing tables/topics, then joins the group. */
  async start(signal: AbortSignal): Promise<void> {
    const { logger } = this.deps;
    const { runtime } = this.config;
    logger.info(
      { topic: runtime.sourceTopic, dlq: runtime.dlqTopic, group: runtime.groupId, bucket: this.config.bucket, storageClass: this.config.storageClass, rollBytes: this.config.rollBytes, rollMs: this.config.rollMs, codec: this.config.compression.codec },
      'archiver starting',
    );
    const untilReady = startupWait(runtime, signal, logger);
    await untilReady('ClickHouse', () => this.index.checkTable());
    await untilReady('S3', () => this.store.list('digests/', 'digests/~'));
    await untilReady('Kafka', () => requireTopicsOnce(this.kafka, [this.config.runtime.sourceTopic, this.config.runtime.dlqTopic]));
    // Reached before the first record: a registry that is down, a wrong URL, or one without the subject (empty, still
    // loading) waits here, logged, instead of dead-lettering every record as SCHEMA_NOT_FOUND.
    await untilReady('schema registry', () => this.schemaRegistry.requireSubject(valueSubject(this.config.runtime.sourceTopic)));
    await this.dlq.connect();
    await this.consumer.start();
    this.archiver.startTimer();
  }

  /** Uploads and commits the open files, then leaves the group. */
  async stop(): Promise<void> {
    await this.archiver.flushAndStop().catch((err: unknown) => this.deps.logger.warn({ err: errorMessage(err) }, 'flushing open files failed; they are archived again after the restart'));
    await this.consumer.stop().catch((err: unknown) => this.deps.logger.warn({ err: errorMessage(err) }, 'consumer stop failed'));
    await this.dlq.disconnect();
    await this.clickhouse.close();
    this.s3.destroy();
  }

  /** Ready while the group is joined, ClickHouse answers a ping and the archive bucket answers a HEAD (S3Readiness). */
  async readiness(): Promise<ReadinessReport> {
    const [clickhouse, s3] = await Promise.all([this.index.ping().catch(() => false), this.s3Readiness.check()]);
    return consumerReadiness({ joined: this.consumer.isJoined, groupId: this.config.runtime.groupId, clickhouse }, this.consumerMetrics, { s3 });
  }

}
