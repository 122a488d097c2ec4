import type { Message } from 'kafkajs';
import { unwrapPayload, type AuditEvent } from '../../schemas/index.js';
import { fieldValue, matches } from './fields.js';
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

/** The signals one event gives the rules; pure, in rule order. */
export function eventSignals(event: AuditEvent, rules: readonly Rule[], detector: PiiDetector, publishedMs: number): Signal[] {
  const final = unwrapPayload(event.payload).kind === 'ExecutionFinished';
  let pii: boolean | undefined;
  const touches = () => (pii ??= detector.touchesPii(event));
  const out: Signal[] = [];
  const emit = (rule: Rule, key: string, role: Signal['role']) =>
    out.push({
      rule: rule.name,
      key,
      role,
      event_id: event.event_id,
      execution_id: event.execution_id,
      workflow_id: event.workflow_id,
      event_time: event.event_time,
      sequence: event.sequence,
      pii: pii ?? false,
      final,
      published_ms: publishedMs,
    });
  for (const rule of rules) {
    switch (rule.kind) {
      case 'match': {
        const matched = matches(event, rule.where);
        if (!rule.touchedPii) {
          if (matched) emit(rule, event.execution_id, 'match');
        } else {
          const carries = touches();
          // Every PII-carrying event of the execution reaches the same key, so the flag is known when the match comes.
          if (matched || carries || final) emit(rule, event.execution_id, matched ? 'match' : carries ? 'pii' : 'end');
        }
        break;
      }
      case 'threshold': {
        const key = matches(event, rule.where) ? fieldValue(event, rule.key) : undefined;
        if (key !== undefined) emit(rule, key, 'match');
        break;
      }
      case 'absence': {
        if (rule.start && rule.end) {
          if (matches(event, rule.start)) emit(rule, event.execution_id, 'start');
          else if (matches(event, rule.end)) emit(rule, event.execution_id, 'end');
        } else if (matches(event, rule.where)) {
          const key = fieldValue(event, rule.key);
          if (key !== undefined) emit(rule, key, 'seen');
        }
        break;
      }
      case 'gap':
        if (matches(event, rule.where)) emit(rule, event.execution_id, 'seq');
        break;
    }
  }
  return out;
}

/** The signal as a Kafka record: key `<rule>/<key>`, so one key's signals meet on one partition of the signals topic. */
export function signalMessage(signal: Signal): Message {
  return { key: `${signal.rule}/${signal.key}`, value: JSON.stringify(signal) };
}
