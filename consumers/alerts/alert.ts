import { createHash } from 'node:crypto';
import type { Rule, RuleKind, Severity } from './rules.js';

/** A fired alert. Ids, counts, times and rule keys only: never a payload value, so never cleartext PII. */
export interface Alert {
  /** Deterministic (rule, key, cause): the idempotency id receivers use to drop duplicates. */
  alert_id: string;
  rule: string;
  kind: RuleKind;
  severity: Severity;
  key: string;
  channels: string[];
  summary: string;
  /** Epoch ms. */
  fired_at: number;
  execution_ids: string[];
  event_count: number;
  evidence: Evidence;
}

export interface Evidence {
  event_ids: string[];
  workflow_ids: string[];
  first_event_time?: number;
  last_event_time?: number;
  window_ms?: number;
  threshold?: number;
  within_ms?: number;
  missing_sequences?: number[];
  touched_pii?: boolean;
  /** Queries that show the underlying records (CLI commands, and URLs when a link base is configured). */
  links: string[];
  /** Epoch ms the triggering event was published (Kafka timestamp), when one event triggered the alert. */
  published_ms?: number;
}

/** The alert id: a UUID-shaped SHA-256 of the rule, the key and what caused it, so a replay produces the same id. */
export function alertId(rule: string, key: string, cause: string): string {
  const h = createHash('sha256').update(`${rule}\u0000${key}\u0000${cause}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Links to the queries behind an alert: `auditline query` commands, plus URLs under `linkBase` when set. */
export function queryLinks(executionIds: readonly string[], workflowIds: readonly string[], linkBase?: string): string[] {
  const links: string[] = [];
  for (const w of workflowIds.slice(0, 3)) links.push(`npx auditline query failed --workflow ${w} --since 1h`);
  for (const e of executionIds.slice(0, 5)) links.push(`npx auditline query decisions ${e}`);
  if (linkBase) for (const e of executionIds.slice(0, 5)) links.push(`${linkBase}?execution_id=${encodeURIComponent(e)}`);
  return links;
}

/** Builds an alert of a rule. */
export function makeAlert(rule: Rule, key: string, cause: string, now: number, summary: string, evidence: Omit<Evidence, 'links'>, executionIds: string[], count: number, linkBase?: string): Alert {
  return {
    alert_id: alertId(rule.name, key, cause),
    rule: rule.name,
    kind: rule.kind,
    severity: rule.severity,
    key,
    channels: rule.channels,
    summary,
    fired_at: now,
    execution_ids: executionIds,
    event_count: count,
    evidence: { ...evidence, links: queryLinks(executionIds, evidence.workflow_ids, linkBase) },
  };
}
