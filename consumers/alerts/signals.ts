import type { Message } from 'kafkajs';
import { unwrapPayload, type AuditEvent } from '../../schemas/index.js';
import { eventView, EXECUTION_FIELDS, matches } from './fields.js';
import type { PiiDetector } from './pii.js';
import type { Rule } from './rules.js';

/**
 * What one event means to one rule, re-keyed by the rule's key (stage 1 of
 * docs/alerts.md, "Design"). Ids, times and flags only: never a payload value.
 */
export interface Signal {
  rule: string;
  key: string;
  role: 'match' | 'pii' | 'start' | 'end' | 'seen' | 'seq';
  event_id: string;
  execution_id: string;
  workflow_id: string;
  event_time: number;
  sequence: number;
  /** The event carries tokenized PII (match rules with touched_pii). */
  pii: boolean;
  /** The event is its execution's ExecutionFinished. */
  final: boolean;
  /** Kafka timestamp of the source record (when it was published), for latency metrics. */
  published_ms: number;
}

/** Rule name of the shared per-execution PII signals (one per event, whatever the number of touched_pii rules). */
export const PII_SIGNAL_RULE = '';

/** The signals one event gives the rules; pure, in rule order. */
export function eventSignals(event: AuditEvent, rules: readonly Rule[], detector: PiiDetector, publishedMs: number): Signal[] {
  const final = unwrapPayload(event.payload).kind === 'ExecutionFinished';
  const tracksPii = rules.some((r) => r.kind === 'match' && r.touchedPii);
  const pii = tracksPii && detector.touchesPii(event);
  const view = eventView(event);
  const out: Signal[] = [];
  const emit = (rule: Rule | undefined, key: string, role: Signal['role']) =>
    out.push({
      rule: rule?.name ?? PII_SIGNAL_RULE,
      key,
      role,
      event_id: event.event_id,
      execution_id: event.execution_id,
      workflow_id: event.workflow_id,
      event_time: event.event_time,
      sequence: event.sequence,
      pii,
      final,
      published_ms: publishedMs,
    });
  for (const rule of rules) {
    switch (rule.kind) {
      case 'match':
        if (matches(view, rule.where)) emit(rule, event.execution_id, 'match');
        break;
      case 'threshold': {
        const key = matches(view, rule.where) ? view[rule.key] : undefined;
        if (key !== undefined) emit(rule, key, 'match');
        break;
      }
      case 'absence': {
        if (rule.start && rule.end) {
          // An end only matters to executions whose start matched: the start's envelope conditions must hold too. An
          // event matching both (a start on the workflow alone, an end on the finish) ends the execution.
          if (matches(view, rule.end) && matches(view, envelope(rule.start))) emit(rule, event.execution_id, 'end');
          else if (matches(view, rule.start)) emit(rule, event.execution_id, 'start');
        } else if (matches(view, rule.where)) {
          const key = view[rule.key];
          if (key !== undefined) emit(rule, key, 'seen');
        }
        break;
      }
      case 'gap':
        if (matches(view, rule.where)) emit(rule, event.execution_id, 'seq');
        break;
    }
  }
  // The execution's PII flag, shared by every touched_pii rule: set by an event carrying PII, dropped after the finish.
  // Signals are keyed by the key value alone, so these meet the match signals of the same execution on one partition.
  if (pii) emit(undefined, event.execution_id, 'pii');
  if (tracksPii && final) emit(undefined, event.execution_id, 'end');
  return out;
}

const envelopes = new WeakMap<object, Partial<Record<string, string[]>>>();

/** The conditions of `where` on fields every event of an execution shares. */
function envelope(where: Partial<Record<string, string[]>>): Partial<Record<string, string[]>> {
  let e = envelopes.get(where);
  if (!e) {
    e = Object.fromEntries(Object.entries(where).filter(([f]) => (EXECUTION_FIELDS as readonly string[]).includes(f)));
    envelopes.set(where, e);
  }
  return e;
}

/**
 * The signal as a Kafka record keyed by the key value, so all signals of
 * one key (of every rule: an execution's PII flag and its match signals)
 * meet on one partition of the signals topic, in order.
 */
export function signalMessage(signal: Signal): Message {
  return { key: signal.key, value: JSON.stringify(signal) };
}
