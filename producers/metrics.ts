import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EventKind } from '../schemas/index.js';

type LostReason = 'unavailable' | 'rejected';

/** Every producer metric (docs/producer.md, "Metrics"); fixed label sets, no ids or payloads as labels. */
export const PRODUCER_METRICS = {
  events: { name: 'auditline_producer_events_total', help: 'Audit events accepted for delivery, by event kind.', labelNames: ['kind'] },
  delivered: { name: 'auditline_producer_delivered_events_total', help: 'Audit events acknowledged by Kafka (acks=all), sent directly or replayed from the spool.', labelNames: ['path'] },
  sendErrors: { name: 'auditline_producer_send_errors_total', help: 'Failed sends of a batch to Kafka.', labelNames: ['retriable'] },
  sendDuration: { name: 'auditline_producer_send_duration_seconds', help: 'Time to get a batch acknowledged by Kafka.', labelNames: [] },
  spooled: { name: 'auditline_producer_spooled_events', help: 'Audit events in the local spool, not yet acknowledged by Kafka.', labelNames: [] },
  queued: { name: 'auditline_producer_queued_events', help: 'Audit events in memory waiting for delivery.', labelNames: [] },
  lost: { name: 'auditline_producer_lost_events_total', help: 'Audit events neither delivered nor spooled (reported to the caller or, with onAuditFailure continue, only here).', labelNames: ['reason'] },
  truncated: { name: 'auditline_producer_truncated_payloads_total', help: 'JSON payloads cut to maxPayloadBytes.', labelNames: [] },
} as const;

/**
 * The producer's metrics on the caller's prom-client registry, or no-ops
 * without one. Several producers may share a registry: metrics are looked
 * up before they are created, and gauges move by deltas so they add up.
 */
export class ProducerMetrics {
  private readonly events?: Counter<string>;
  private readonly deliveredEvents?: Counter<string>;
  private readonly sendErrors?: Counter<string>;
  private readonly sendDuration?: Histogram<string>;
  private readonly spooledEvents?: Gauge<string>;
  private readonly queuedEvents?: Gauge<string>;
  private readonly lostEvents?: Counter<string>;
  private readonly truncatedPayloads?: Counter<string>;

  constructor(registry?: Registry) {
    if (!registry) return;
    const m = PRODUCER_METRICS;
    const counter = (d: { name: string; help: string; labelNames: readonly string[] }) =>
      (registry.getSingleMetric(d.name) as Counter<string> | undefined) ?? new Counter({ ...d, labelNames: [...d.labelNames], registers: [registry] });
    const gauge = (d: { name: string; help: string }) =>
      (registry.getSingleMetric(d.name) as Gauge<string> | undefined) ?? new Gauge({ name: d.name, help: d.help, registers: [registry] });
    this.events = counter(m.events);
    this.deliveredEvents = counter(m.delivered);
    this.sendErrors = counter(m.sendErrors);
    this.lostEvents = counter(m.lost);
    this.truncatedPayloads = counter(m.truncated);
    this.spooledEvents = gauge(m.spooled);
    this.queuedEvents = gauge(m.queued);
    this.sendDuration =
      (registry.getSingleMetric(m.sendDuration.name) as Histogram<string> | undefined) ??
      new Histogram({ name: m.sendDuration.name, help: m.sendDuration.help, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers: [registry] });
  }

  eventAccepted(kind: EventKind): void {
    this.events?.inc({ kind });
    this.queuedEvents?.inc();
  }

  eventSettled(): void {
    this.queuedEvents?.dec();
  }

  delivered(count: number, path: 'direct' | 'replay'): void {
    this.deliveredEvents?.inc({ path }, count);
  }

  sendFailed(retriable: boolean): void {
    this.sendErrors?.inc({ retriable: String(retriable) });
  }

  sendTook(seconds: number): void {
    this.sendDuration?.observe(seconds);
  }

  spooled(delta: number): void {
    this.spooledEvents?.inc(delta);
  }

  lost(count: number, reason: LostReason): void {
    this.lostEvents?.inc({ reason }, count);
  }

  truncated(count = 1): void {
    this.truncatedPayloads?.inc(count);
  }
}
