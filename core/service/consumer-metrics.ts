import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Stages a batch consumer retries (label `stage`). */
export type RetryStage = 'handle' | 'dead_letter' | 'commit';

/**
 * Metrics of a batch consumer, named `auditline_<service>_*` with fixed
 * label sets (docs/metrics.md). No ids or payload values ever become labels.
 */
export function consumerMetricDefinitions(service: string) {
  const p = `auditline_${service}_`;
  return {
    records: { name: `${p}records_total`, help: 'Source records finished, by outcome: processed (stored) or dead_lettered.', labelNames: ['outcome'] },
    deadLetters: { name: `${p}dead_letters_total`, help: 'Records published to the dead-letter topic, by error code.', labelNames: ['error_code'] },
    batches: { name: `${p}batches_total`, help: 'Batches handled and committed.', labelNames: [] },
    batchRecords: { name: `${p}batch_records`, help: 'Records per committed batch.', labelNames: [] },
    batchDuration: { name: `${p}batch_duration_seconds`, help: 'Time from the start of a batch to its committed offset, retries included.', labelNames: [] },
    retries: { name: `${p}retries_total`, help: 'Retries after a retriable failure, by stage (handle, dead_letter, commit).', labelNames: ['stage'] },
    lag: { name: `${p}consumer_lag_records`, help: 'Records behind the partition end after the last commit (high watermark minus committed offset).', labelNames: ['partition'] },
    lastCommit: { name: `${p}last_commit_timestamp_seconds`, help: 'Unix time of the last successful offset commit.', labelNames: [] },
    ready: { name: `${p}ready`, help: '1 while /readyz reports ready, else 0.', labelNames: [] },
    expired: {
      name: `${p}records_expired_unread_total`,
      help: "Records the source topic's retention deleted before this consumer group read them (a committed offset below the partition's earliest offset, seen at start): lost to this service.",
      labelNames: [],
    },
    freshness: {
      name: `${p}freshness_seconds`,
      help: "From a record's Kafka timestamp (when it was published) to the moment this service stored it and committed its offset; one observation per record.",
      labelNames: [],
    },
  } as const;
}

/** Buckets of the freshness histogram: sub-second when healthy, up to an hour behind during an outage. */
export const FRESHNESS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** The part of a record freshness needs: its Kafka timestamp (ms since the epoch, as kafkajs gives it). */
export interface TimestampedRecord {
  timestamp: string;
}

/** The batch consumer's metrics on a prom-client registry. */
export class ConsumerMetrics {
  private readonly records: Counter<string>;
  private readonly deadLetters: Counter<string>;
  private readonly batches: Counter<string>;
  private readonly batchRecords: Histogram<string>;
  private readonly batchDuration: Histogram<string>;
  private readonly retries: Counter<string>;
  private readonly lag: Gauge<string>;
  private readonly lastCommit: Gauge<string>;
  private readonly freshness: Histogram<string>;
  private readonly expired: Counter<string>;
  readonly readyGauge: Gauge<string>;

  constructor(registry: Registry, service: string) {
    const d = consumerMetricDefinitions(service);
    const registers = [registry];
    this.records = new Counter({ ...d.records, labelNames: [...d.records.labelNames], registers });
    this.deadLetters = new Counter({ ...d.deadLetters, labelNames: [...d.deadLetters.labelNames], registers });
    this.batches = new Counter({ name: d.batches.name, help: d.batches.help, registers });
    this.batchRecords = new Histogram({ name: d.batchRecords.name, help: d.batchRecords.help, buckets: [1, 10, 100, 500, 1000, 5000, 10000, 50000], registers });
    this.batchDuration = new Histogram({ name: d.batchDuration.name, help: d.batchDuration.help, buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers });
    this.retries = new Counter({ ...d.retries, labelNames: [...d.retries.labelNames], registers });
    this.lag = new Gauge({ ...d.lag, labelNames: [...d.lag.labelNames], registers });
    this.lastCommit = new Gauge({ name: d.lastCommit.name, help: d.lastCommit.help, registers });
    this.readyGauge = new Gauge({ name: d.ready.name, help: d.ready.help, registers });
    this.freshness = new Histogram({ name: d.freshness.name, help: d.freshness.help, buckets: FRESHNESS_BUCKETS, registers });
    this.expired = new Counter({ name: d.expired.name, help: d.expired.help, registers });
    // Both outcomes exist from the start, so a dashboard sees 0 rather than no series.
    this.records.inc({ outcome: 'processed' }, 0);
    this.records.inc({ outcome: 'dead_lettered' }, 0);
  }

  batchCommitted(records: number, deadLettered: number, seconds: number): void {
    this.records.inc({ outcome: 'processed' }, records - deadLettered);
    if (deadLettered > 0) this.records.inc({ outcome: 'dead_lettered' }, deadLettered);
    this.batches.inc();
    this.batchRecords.observe(records);
    this.batchDuration.observe(seconds);
    this.lastCommit.set(Date.now() / 1000);
  }

  deadLettered(code: string): void {
    this.deadLetters.inc({ error_code: code });
  }

  retried(stage: RetryStage): void {
    this.retries.inc({ stage });
  }

  /**
   * Observes publish -> stored for each record, `nowMs` minus its Kafka
   * timestamp. Called once the records are stored and committed: by the
   * batch consumer after the commit, or by a handler that stores records
   * later than their batch (BatchConsumerOptions.freshness = 'handler').
   * Records without a timestamp are skipped; a producer clock ahead of ours
   * counts as 0.
   */
  recordsStored(records: readonly TimestampedRecord[], nowMs: number = Date.now()): void {
    for (const record of records) {
      const publishedMs = Number(record.timestamp);
      if (publishedMs > 0) this.freshness.observe(Math.max(0, nowMs - publishedMs) / 1000);
    }
  }

  lagAfterCommit(partition: number, records: number): void {
    this.lag.set({ partition: String(partition) }, Math.max(0, records));
  }

  /** Records found deleted by retention before this group read them. */
  expiredUnread(records: number): void {
    this.expired.inc(records);
  }

  setReady(ready: boolean): void {
    this.readyGauge.set(ready ? 1 : 0);
  }
}
