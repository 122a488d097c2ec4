import { Counter, Histogram, type Registry } from 'prom-client';
import type { HotstoreTable } from './rows.js';

/** The hot store's own metrics (docs/metrics.md); the batch consumer's come from core/service. */
export const HOTSTORE_METRICS = {
  rows: { name: 'auditline_hotstore_rows_written_total', help: 'Rows inserted into ClickHouse, by table (a redelivered event counts again).', labelNames: ['table'] },
  insertDuration: { name: 'auditline_hotstore_insert_duration_seconds', help: 'Duration of one acknowledged INSERT, by table.', labelNames: ['table'] },
  insertErrors: { name: 'auditline_hotstore_insert_errors_total', help: 'Failed INSERTs, by kind: retriable (ClickHouse unwell, retried) or rejected (bad rows, isolated and dead-lettered).', labelNames: ['kind'] },
  decoded: { name: 'auditline_hotstore_events_decoded_total', help: 'Records decoded into audit events, by event kind.', labelNames: ['kind'] },
} as const;

export class HotstoreMetrics {
  private readonly rows: Counter<string>;
  private readonly insertDuration: Histogram<string>;
  private readonly insertErrors: Counter<string>;
  private readonly decodedEvents: Counter<string>;

  constructor(registry: Registry) {
    const m = HOTSTORE_METRICS;
    const registers = [registry];
    this.rows = new Counter({ ...m.rows, labelNames: [...m.rows.labelNames], registers });
    this.insertDuration = new Histogram({ ...m.insertDuration, labelNames: [...m.insertDuration.labelNames], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers });
    this.insertErrors = new Counter({ ...m.insertErrors, labelNames: [...m.insertErrors.labelNames], registers });
    this.decodedEvents = new Counter({ ...m.decoded, labelNames: [...m.decoded.labelNames], registers });
  }

  inserted(table: HotstoreTable, rows: number, seconds: number): void {
    this.rows.inc({ table }, rows);
    this.insertDuration.observe({ table }, seconds);
  }

  insertFailed(kind: 'retriable' | 'rejected'): void {
    this.insertErrors.inc({ kind });
  }

  decoded(kind: string): void {
    this.decodedEvents.inc({ kind });
  }
}
