import { Counter, Histogram, type Registry } from 'prom-client';

/** The archiver's own metrics (docs/metrics.md); the batch consumer's come from core/service. */
export const ARCHIVER_METRICS = {
  objects: { name: 'auditline_archiver_objects_total', help: 'Archive objects, by outcome: uploaded; existing (a retry found the same bytes); conflict (other bytes under the key holding the same records, indexed as stored); foreign (other records under the key: not archived, ARCHIVE_KEY_CONFLICT; counted at every attempt).', labelNames: ['outcome'] },
  records: { name: 'auditline_archiver_records_archived_total', help: 'Records written into archive objects (a retry counts again).', labelNames: [] },
  rawBytes: { name: 'auditline_archiver_raw_bytes_total', help: 'Avro bytes of the archived records before compression.', labelNames: [] },
  storedBytes: { name: 'auditline_archiver_stored_bytes_total', help: 'Bytes of the archive objects (compressed container files).', labelNames: [] },
  rollDuration: { name: 'auditline_archiver_roll_duration_seconds', help: 'Time to encode, upload, index and commit one object.', labelNames: [] },
  digests: { name: 'auditline_archiver_digests_total', help: 'Signed digests written.', labelNames: [] },
  retries: { name: 'auditline_archiver_step_retries_total', help: 'Retries of archiver steps after retriable failures, by step (upload, index, dead letter, listing, reading the conflicting object).', labelNames: ['step'] },
} as const;

export class ArchiverMetrics {
  private readonly objects: Counter<string>;
  private readonly records: Counter<string>;
  private readonly rawBytes: Counter<string>;
  private readonly storedBytes: Counter<string>;
  private readonly rollDuration: Histogram<string>;
  private readonly digests: Counter<string>;
  private readonly retries: Counter<string>;

  constructor(registry: Registry) {
    const m = ARCHIVER_METRICS;
    const registers = [registry];
    this.objects = new Counter({ ...m.objects, labelNames: [...m.objects.labelNames], registers });
    this.records = new Counter({ name: m.records.name, help: m.records.help, registers });
    this.rawBytes = new Counter({ name: m.rawBytes.name, help: m.rawBytes.help, registers });
    this.storedBytes = new Counter({ name: m.storedBytes.name, help: m.storedBytes.help, registers });
    this.rollDuration = new Histogram({ name: m.rollDuration.name, help: m.rollDuration.help, buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers });
    this.digests = new Counter({ name: m.digests.name, help: m.digests.help, registers });
    this.retries = new Counter({ ...m.retries, labelNames: [...m.retries.labelNames], registers });
  }

  objectWritten(outcome: string, records: number, rawBytes: number, storedBytes: number, seconds: number): void {
    this.objects.inc({ outcome });
    this.records.inc(records);
    this.rawBytes.inc(rawBytes);
    this.storedBytes.inc(storedBytes);
    this.rollDuration.observe(seconds);
  }

  /** An attempt found someone else's object (other records) at the key it must write: nothing stored, the partition stops. */
  foreignObject(): void {
    this.objects.inc({ outcome: 'foreign' });
  }

  digestWritten(): void {
    this.digests.inc();
  }

  retried(step: string): void {
    this.retries.inc({ step: step.replace(/\s+/g, '_') });
  }
}
