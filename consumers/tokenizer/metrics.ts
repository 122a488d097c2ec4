import { Counter, type Registry } from 'prom-client';

/** The tokenizer's own metrics (docs/metrics.md); the batch consumer's come from core/service. No label ever holds a value or an id. */
export const TOKENIZER_METRICS = {
  events: { name: 'auditline_tokenizer_events_tokenized_total', help: 'Events written to the events topic, by event kind.', labelNames: ['kind'] },
  values: { name: 'auditline_tokenizer_pii_values_total', help: 'PII values replaced by tokens, by how they were found: field (a PII key), email or phone (detectors).', labelNames: ['source'] },
  bundles: { name: 'auditline_tokenizer_encryptions_total', help: 'AES-256-GCM encryptions (one per field and subject key, covering all its values).', labelNames: [] },
  keyLookups: { name: 'auditline_tokenizer_key_lookups_total', help: 'Subject key lookups, by result: hit (memory), miss (asked ClickHouse), created (new key stored).', labelNames: ['result'] },
  subjects: {
    name: 'auditline_tokenizer_subject_resolutions_total',
    help: 'How the data subject of an event with PII was found: started (its own ExecutionStarted), memory, store (execution_subjects), value (a subject key among its values), execution (none: an execution-scoped subject).',
    labelNames: ['source'],
  },
  transactions: { name: 'auditline_tokenizer_transactions_total', help: 'Kafka transactions, by outcome: committed, aborted (failed, retried), fenced (another instance took the partition).', labelNames: ['outcome'] },
  skipped: { name: 'auditline_tokenizer_already_committed_records_total', help: 'Redelivered records skipped because a committed transaction already covered them (after a failover or an ambiguous commit).', labelNames: [] },
} as const;

export type SubjectSource = 'started' | 'memory' | 'store' | 'value' | 'execution';

export class TokenizerMetrics {
  private readonly events: Counter<string>;
  private readonly values: Counter<string>;
  private readonly bundles: Counter<string>;
  private readonly keyLookups: Counter<string>;
  private readonly subjects: Counter<string>;
  private readonly transactions: Counter<string>;
  private readonly skipped: Counter<string>;

  constructor(registry: Registry) {
    const m = TOKENIZER_METRICS;
    const registers = [registry];
    const counter = (d: { name: string; help: string; labelNames: readonly string[] }) => new Counter({ name: d.name, help: d.help, labelNames: [...d.labelNames], registers });
    this.events = counter(m.events);
    this.values = counter(m.values);
    this.bundles = counter(m.bundles);
    this.keyLookups = counter(m.keyLookups);
    this.subjects = counter(m.subjects);
    this.transactions = counter(m.transactions);
    this.skipped = counter(m.skipped);
    for (const outcome of ['committed', 'aborted', 'fenced']) this.transactions.inc({ outcome }, 0);
  }

  tokenized(kind: string): void {
    this.events.inc({ kind });
  }

  piiValues(source: string, n: number): void {
    if (n > 0) this.values.inc({ source }, n);
  }

  encrypted(n: number): void {
    if (n > 0) this.bundles.inc(n);
  }

  keyLookup(hits: number, misses: number, created: number): void {
    if (hits > 0) this.keyLookups.inc({ result: 'hit' }, hits);
    if (misses > 0) this.keyLookups.inc({ result: 'miss' }, misses);
    if (created > 0) this.keyLookups.inc({ result: 'created' }, created);
  }

  subjectResolved(source: SubjectSource): void {
    this.subjects.inc({ source });
  }

  transaction(outcome: 'committed' | 'aborted' | 'fenced'): void {
    this.transactions.inc({ outcome });
  }

  skippedCommitted(n: number): void {
    if (n > 0) this.skipped.inc(n);
  }
}
