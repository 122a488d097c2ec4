import type { IHeaders } from 'kafkajs';
import { unwrapPayload, type AuditEvent, type EventKind } from '../../schemas/index.js';
import { headerText } from '../../core/clients/kafka.js';
import { canonicalJson } from '../../core/pii/canonical-json.js';
import { EMAIL_EXACT, type DetectionKind } from '../../core/pii/detectors.js';
import { isMaskShaped } from '../../core/pii/mask.js';
import type { TokenizerConfig } from './config.js';
import { PII_KEY, isProtectedValue } from './pii-format.js';
import { piiKeyName, scanField, sealSlots, type FieldScan, type SealContext } from './scan.js';
import { walkJson } from './json-text.js';

/** Header the producer sets to its PII mode (docs/producer.md). */
export const PII_MODE_HEADER = 'auditline-pii-mode';

/** What the tokenizer treats as PII and how it finds an execution's data subject. */
export interface TokenizePolicy {
  /** Lower-cased JSON keys whose values are PII at any depth. */
  piiFields: ReadonlySet<string>;
  detectors: ReadonlySet<DetectionKind>;
  /** Lower-cased key of a customer id in the ExecutionStarted input; preferred over the e-mail. */
  subjectIdField?: string;
  /** Lower-cased key of the customer's e-mail address in the ExecutionStarted input. */
  subjectEmailField: string;
}

/** The policy of the tokenizer's settings (AUDITLINE_TOKENIZER_PII_FIELDS, _DETECTORS, _SUBJECT_*_FIELD). */
export function tokenizePolicy(config: Pick<TokenizerConfig, 'piiFields' | 'detectors' | 'subjectEmailField' | 'subjectIdField'>): TokenizePolicy {
  return {
    piiFields: new Set(config.piiFields),
    detectors: new Set(config.detectors),
    subjectEmailField: config.subjectEmailField,
    ...(config.subjectIdField ? { subjectIdField: config.subjectIdField } : {}),
  };
}

/** The PII found in one event, before sealing. */
export interface EventScan {
  event: AuditEvent;
  kind: EventKind;
  fields: { holder: Record<string, unknown>; key: string; path: string; scan: FieldScan }[];
  /** Number of PII values found. */
  values: number;
  /** Subject id the event's own values name (ExecutionStarted: its input; others: a subject key among their PII). */
  ownSubject: string | undefined;
}

/**
 * Scans an event's pii-tagged and free-text fields (scannedFieldPaths, core/pii).
 * String fields are scanned (JSON or free text); record fields (an error)
 * are skipped as such, their string members have their own paths.
 */
export function scanEvent(event: AuditEvent, headers: IHeaders, policy: TokenizePolicy, paths: Map<EventKind, string[][]>): EventScan {
  const { kind, value } = unwrapPayload(event.payload);
  const mode = headerText(headers[PII_MODE_HEADER]);
  const options = { piiFields: policy.piiFields, detectors: policy.detectors, keyedValuesProtected: mode === 'hash' || mode === 'mask' };
  const fields: EventScan['fields'] = [];
  let values = 0;
  for (const segments of paths.get(kind) ?? []) {
    let holder: unknown = value;
    for (const s of segments.slice(0, -1)) holder = holder !== null && typeof holder === 'object' ? (holder as Record<string, unknown>)[s] : undefined;
    if (holder === null || typeof holder !== 'object') continue;
    const key = segments[segments.length - 1]!;
    const text = (holder as Record<string, unknown>)[key];
    if (typeof text !== 'string') continue;
    const scan = scanField(text, options);
    if (!scan) continue;
    fields.push({ holder: holder as Record<string, unknown>, key, path: segments.join('.'), scan });
    values += scan.slots.length;
  }
  // An ExecutionStarted names it in its input's JSON; failing that (a truncated input's preview, JSON quoted in a
  // string), or in other events, a subject key among the values found.
  const ownSubject = (kind === 'ExecutionStarted' ? subjectInJson((value as { input: string }).input, policy) : undefined) ?? subjectInValues(fields, policy);
  return { event, kind, fields, values, ownSubject };
}

/** The subject a scan's keyed values name: the id field's, else the e-mail field's (first found). */
function subjectInValues(fields: EventScan['fields'], policy: TokenizePolicy): string | undefined {
  // A value the text ends inside (a truncated preview) may be only its start: it names nobody.
  const slots = fields.flatMap((f) => f.scan.slots).filter((s) => s.keyed && !s.cut);
  const pick = (field: string, holds: (value: unknown) => boolean = () => true) => {
    const name = piiKeyName(field);
    return slots.find((s) => piiKeyName(s.field) === name && holds(s.value));
  };
  const id = policy.subjectIdField === undefined ? undefined : pick(policy.subjectIdField, namesId);
  const email = pick(policy.subjectEmailField, namesEmail);
  return id ? subjectId('id', id.value) : email ? subjectId('email', email.value) : undefined;
}

/**
 * True when an e-mail field's value names a person: an address (not a
 * mask such as `a***@example.com`, which a producer in mask mode writes
 * for every `ann@…`, `amy@…` alike), or the producer's hash of one. `n/a`,
 * `unknown` or a mask would make one subject, one key, of many customers,
 * that no `erase --email` reaches.
 */
function namesEmail(value: unknown): boolean {
  if (isProtectedValue(value)) return true;
  return typeof value === 'string' && EMAIL_EXACT.test(value.trim()) && !isMaskShaped(value);
}

/** True when a customer id field's value names someone: any value but an empty one or a mask (`***`). */
function namesId(value: unknown): boolean {
  return value !== null && value !== '' && (isProtectedValue(value) || !isMaskShaped(value));
}

/** Seals every field of a scan under one subject key and writes the tokenized text into the event. */
export function sealEvent(scan: EventScan, ctx: Omit<SealContext, 'executionId'>): void {
  const context: SealContext = { ...ctx, executionId: scan.event.execution_id };
  for (const field of scan.fields) {
    sealSlots(field.scan.slots, context);
    field.holder[field.key] = field.scan.render();
  }
}

/**
 * The subject id of a value: `id:<id>` for a customer id, `email:<address>`
 * (trimmed, lower-cased) for an e-mail address, `hashed:<producer hash>`
 * when the producer already hashed it.
 */
export function subjectId(kind: 'id' | 'email', value: unknown): string | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  if (isProtectedValue(value)) {
    const inner = (value as Record<string, unknown>)[PII_KEY];
    return typeof inner === 'string' ? `hashed:${inner}` : undefined;
  }
  if (typeof value !== 'string') return `${kind}:${canonicalJson(value)}`;
  return kind === 'email' ? `email:${value.normalize('NFC').trim().toLowerCase()}` : `id:${value.normalize('NFC').trim()}`;
}

/** The digits of the first integer under a key named `name` in JSON text that parses to `value` (a double that rounded it). */
function integerAsWritten(text: string, name: string, value: number): string | undefined {
  let digits: string | undefined;
  walkJson(text, {
    value(start, key, index) {
      if (digits !== undefined) return index.end(start);
      if (key === undefined || piiKeyName(key) !== name) return undefined;
      const raw = text.slice(start, index.end(start));
      if (/^-?\d+$/.test(raw) && Number(raw) === value) digits = raw;
      return undefined;
    },
    string() {},
  });
  return digits;
}

/** First subject id named in a JSON text: the id field anywhere, else the e-mail field anywhere (depth first). */
export function subjectInJson(text: string, policy: TokenizePolicy): string | undefined {
  const first = text.trimStart()[0];
  if (first !== '{' && first !== '[') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  const find = (node: unknown, name: string, names: (value: unknown) => boolean): unknown => {
    if (node === null || typeof node !== 'object' || isProtectedValue(node)) return undefined;
    for (const [k, v] of Object.entries(node)) {
      if (!Array.isArray(node) && piiKeyName(k) === name && names(v)) return v;
      const inner = find(v, name, names);
      if (inner !== undefined) return inner;
    }
    return undefined;
  };
  if (policy.subjectIdField) {
    const name = piiKeyName(policy.subjectIdField);
    const found = find(parsed, name, namesId);
    // A 64-bit id written as a JSON integer (1541815603606036481) is rounded by JSON.parse: its subject is taken from
    // the digits as written, the id `erase --customer-id` is given, or customers whose ids round alike share a key.
    const id = subjectId('id', typeof found === 'number' && !Number.isSafeInteger(found) ? (integerAsWritten(text, name, found) ?? found) : found);
    if (id) return id;
  }
  return subjectId('email', find(parsed, piiKeyName(policy.subjectEmailField), namesEmail));
}

