import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The alerts service's own metrics (docs/metrics.md); the batch consumers' come from core/service. */
export const ALERTS_METRICS = {
  evaluations: { name: 'auditline_alerts_rule_evaluations_total', help: 'Rule evaluations: events read times rules loaded.', labelNames: [] },
  signals: { name: 'auditline_alerts_signals_total', help: 'Signals (an event relevant to a rule) written to the signals topic.', labelNames: [] },
  fired: { name: 'auditline_alerts_fired_total', help: 'Alerts fired, by rule kind and severity.', labelNames: ['kind', 'severity'] },
  suppressed: { name: 'auditline_alerts_suppressed_total', help: 'Alerts suppressed by throttling (same rule and key within the throttle period).', labelNames: [] },
  stateEntries: { name: 'auditline_alerts_state_entries', help: 'Rule state entries held for the partitions this instance owns.', labelNames: [] },
  deliveries: { name: 'auditline_alerts_deliveries_total', help: 'Webhook delivery attempts, by channel and outcome (delivered, failed, dead_lettered, ssrf_refused).', labelNames: ['channel', 'outcome'] },
  deliveryLatency: { name: 'auditline_alerts_delivery_latency_seconds', help: 'From an alert firing to its successful delivery, by channel.', labelNames: ['channel'] },
} as const;

export class AlertsMetrics {
  private readonly evaluations: Counter<string>;
  private readonly signals: Counter<string>;
  private readonly firedAlerts: Counter<string>;
  private readonly suppressedAlerts: Counter<string>;
  private readonly entries: Gauge<string>;
  private readonly deliveries: Counter<string>;
  private readonly latency: Histogram<string>;

  constructor(registry: Registry) {
    const m = ALERTS_METRICS;
    const registers = [registry];
    this.evaluations = new Counter({ ...m.evaluations, labelNames: [], registers });
    this.signals = new Counter({ ...m.signals, labelNames: [], registers });
    this.firedAlerts = new Counter({ ...m.fired, labelNames: [...m.fired.labelNames], registers });
    this.suppressedAlerts = new Counter({ ...m.suppressed, labelNames: [], registers });
    this.entries = new Gauge({ ...m.stateEntries, labelNames: [], registers });
    this.deliveries = new Counter({ ...m.deliveries, labelNames: [...m.deliveries.labelNames], registers });
    this.latency = new Histogram({ ...m.deliveryLatency, labelNames: [...m.deliveryLatency.labelNames], buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600], registers });
  }

  evaluated(events: number, rules: number): void {
    this.evaluations.inc(events * rules);
  }

  signalled(n: number): void {
    this.signals.inc(n);
  }

  fired(kind: string, severity: string): void {
    this.firedAlerts.inc({ kind, severity });
  }

  suppressed(): void {
    this.suppressedAlerts.inc();
  }

  stateSize(n: number): void {
    this.entries.set(n);
  }

  delivered(channel: string, secondsSinceFired: number): void {
    this.deliveries.inc({ channel, outcome: 'delivered' });
    this.latency.observe({ channel }, Math.max(0, secondsSinceFired));
  }

  deliveryFailed(channel: string): void {
    this.deliveries.inc({ channel, outcome: 'failed' });
  }

  deadLettered(channel: string): void {
    this.deliveries.inc({ channel, outcome: 'dead_lettered' });
  }

  ssrfRefused(channel: string): void {
    this.deliveries.inc({ channel, outcome: 'ssrf_refused' });
  }
}
