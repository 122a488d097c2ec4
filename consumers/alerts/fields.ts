import { EVENT_KINDS, enumSymbols, unwrapPayload, type AuditEvent } from '../../schemas/index.js';
import { holdsTokenMark, rewriteTokens } from '../tokenizer/pii-format.js';

/**
 * Event fields rules may test. Only envelope and sox/internal fields: none
 * is tagged pii in the schema, and the tokenizer has replaced any PII a
 * workflow put into a name or error type (core/pii/scanned-fields.ts) with
 * its token, so conditions and keys never hold cleartext personal data (and
 * alerts built from them do not either).
 */
export const CONDITION_FIELDS = ['event', 'workflow_id', 'workflow_name', 'status', 'trigger', 'step_name', 'error.type', 'producer.service', 'producer.host'] as const;
export type ConditionField = (typeof CONDITION_FIELDS)[number];

/** The values a condition on these fields can match (from the event schema); a rule naming another never fires. */
export function conditionValues(field: ConditionField): readonly string[] | undefined {
  switch (field) {
    case 'event':
      return EVENT_KINDS;
    case 'status':
      return [...new Set([...enumSymbols('ExecutionStatus'), ...enumSymbols('StepStatus')])];
    case 'trigger':
      return enumSymbols('Trigger');
    default:
      return undefined;
  }
}

/** Fields a rule may group by (threshold counts, silence keys). */
export const KEY_FIELDS = ['execution_id', 'workflow_id', 'producer.service', 'producer.host', 'step_name', 'error.type'] as const;
export type KeyField = (typeof KEY_FIELDS)[number];

/** The value of a condition or key field of an event, as text; undefined when the event kind has no such field. */
export function fieldValue(event: AuditEvent, field: ConditionField | KeyField): string | undefined {
  switch (field) {
    case 'execution_id':
      return event.execution_id;
    case 'workflow_id':
      return event.workflow_id;
    case 'producer.service':
      return event.producer.service;
    case 'producer.host':
      return event.producer.host;
    default:
      break;
  }
  const { kind, value } = unwrapPayload(event.payload);
  const v = value as unknown as Record<string, unknown>;
  switch (field) {
    case 'event':
      return kind;
    case 'status':
    case 'trigger':
      return typeof v[field] === 'string' ? (v[field] as string) : undefined;
    case 'step_name':
    case 'workflow_name':
      return typeof v[field] === 'string' ? withoutMasks(v[field] as string) : undefined;
    case 'error.type': {
      const error = v.error as { type?: unknown } | null | undefined;
      return typeof error?.type === 'string' ? withoutMasks(error.type) : undefined;
    }
  }
}

/**
 * Free text as alerts may carry it: each tokenizer marker or token object
 * (a PII value a workflow put into a step name or error type) becomes `[pii:<first 8
 * characters of its token>]`, so alert keys, summaries and webhooks hold
 * neither the value nor its mask (`a***@example.com` keeps the domain), and
 * two values still make two keys.
 */
export function withoutMasks(text: string): string {
  if (!holdsTokenMark(text)) return text;
  // Inline markers, and token objects when the text is JSON (each becomes the string "[pii:…]").
  return rewriteTokens(text, (token) => ({ replace: `[pii:${token.t.slice(0, 8)}]` }));
}

/** Every condition and key field of an event, read once (rules then test the view, not the event). */
export type EventView = Readonly<Partial<Record<ConditionField | KeyField, string>>>;

export function eventView(event: AuditEvent): EventView {
  const view: Partial<Record<ConditionField | KeyField, string>> = {};
  for (const f of [...CONDITION_FIELDS, 'execution_id'] as const) {
    const v = fieldValue(event, f);
    if (v !== undefined) view[f] = v;
  }
  return view;
}

const compiled = new WeakMap<object, [ConditionField, string[]][]>();

/** True when every condition holds for the event. Conditions are compiled to a list once per rule (hot path: events x rules). */
export function matches(view: EventView, where: Partial<Record<ConditionField, string[]>>): boolean {
  let list = compiled.get(where);
  if (!list) {
    list = Object.entries(where) as [ConditionField, string[]][];
    compiled.set(where, list);
  }
  for (let i = 0; i < list.length; i++) {
    const [field, accepted] = list[i]!;
    const v = view[field];
    if (v === undefined || !accepted.includes(v)) return false;
  }
  return true;
}

/** Fields whose value is the same on every event of an execution (the envelope). */
export const EXECUTION_FIELDS: readonly ConditionField[] = ['workflow_id', 'producer.service', 'producer.host'];
