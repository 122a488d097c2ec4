import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AuditlineError } from '../../core/errors.js';
import { parseDuration } from './duration.js';
import { CONDITION_FIELDS, conditionValues, EXECUTION_FIELDS, KEY_FIELDS, type ConditionField, type KeyField } from './fields.js';

export const SEVERITIES = ['info', 'warning', 'high', 'critical'] as const;
export type Severity = (typeof SEVERITIES)[number];

/** Field conditions, all of which must hold: a value, or a list of accepted values. */
export type Conditions = Partial<Record<ConditionField, string[]>>;

interface RuleBase {
  name: string;
  severity: Severity;
  channels: string[];
  /** After an alert for a key fires, repeats for the same rule and key are suppressed for this long (0 = never). */
  throttleMs: number;
  description?: string;
}

/** Fires on every matching event; `touchedPii` also requires that some event of the execution carried tokenized PII. */
export interface MatchRule extends RuleBase {
  kind: 'match';
  where: Conditions;
  touchedPii: boolean;
}

/** Fires when `count` matching events with the same key fall into a sliding `windowMs` (event time). */
export interface ThresholdRule extends RuleBase {
  kind: 'threshold';
  where: Conditions;
  key: KeyField;
  count: number;
  windowMs: number;
}

/**
 * Either per execution: an event matching `start` without one matching `end`
 * within `withinMs`; or silence: no event matching `where` for a key seen
 * before, for `withinMs` (wall clock).
 */
export interface AbsenceRule extends RuleBase {
  kind: 'absence';
  withinMs: number;
  start?: Conditions;
  end?: Conditions;
  key: KeyField;
  where: Conditions;
}

/** Fires when a sequence number of an execution is still missing `graceMs` after a later one arrived. */
export interface GapRule extends RuleBase {
  kind: 'gap';
  where: Conditions;
  graceMs: number;
}

export type Rule = MatchRule | ThresholdRule | AbsenceRule | GapRule;
export type RuleKind = Rule['kind'];

const duration = z.string().refine((v) => parseDuration(v) !== undefined, 'must be a duration such as 30s, 10m, 2h or 1d').transform((v) => parseDuration(v)!);
// Event fields are text: an unquoted YAML number or boolean (0042 read as 42, 1.10 as 1.1, True as true) would be
// compared as another text than the one written, and the rule would never fire.
const NOT_TEXT = 'must be text: put the value in quotes (YAML reads an unquoted 0042 as the number 42, 1.10 as 1.1, True as true)';
const conditions = z
  .record(z.string(), z.unknown())
  .superRefine((obj, ctx) => {
    for (const [k, v] of Object.entries(obj)) {
      if (!(CONDITION_FIELDS as readonly string[]).includes(k)) {
        ctx.addIssue({ code: 'custom', path: [k], message: `unknown field; use one of ${CONDITION_FIELDS.join(', ')}` });
        continue;
      }
      if (Array.isArray(v) && v.length === 0) {
        ctx.addIssue({ code: 'custom', path: [k], message: 'must list at least one value' });
        continue;
      }
      const values = Array.isArray(v) ? (v as unknown[]) : [v];
      const notText = values.findIndex((x) => typeof x !== 'string');
      if (notText >= 0) {
        ctx.addIssue({ code: 'custom', path: Array.isArray(v) ? [k, notText] : [k], message: NOT_TEXT });
        continue;
      }
      // A misspelt value (ExecutionFinishd, failure) would load and never match.
      const allowed = conditionValues(k as ConditionField);
      if (!allowed) continue;
      for (const value of values as string[]) {
        if (!allowed.includes(value)) ctx.addIssue({ code: 'custom', path: [k], message: `${JSON.stringify(value)} is not a possible ${k}; use one of ${allowed.join(', ')}` });
      }
    }
  })
  .transform((obj) => Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, Array.isArray(v) ? v : [v]])) as Conditions);
const keyField = z.enum(KEY_FIELDS as unknown as [KeyField, ...KeyField[]], { message: `must be one of ${KEY_FIELDS.join(', ')}` });
const base = {
  name: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,99}$/, 'must be 1-100 characters of a-z 0-9 _ . - (lower case)'),
  severity: z.enum(SEVERITIES, { message: `must be one of ${SEVERITIES.join(', ')}` }),
  channels: z.array(z.string().min(1)).min(1, 'must name at least one channel'),
  throttle: duration.optional(),
  description: z.string().max(500).optional(),
};

const ruleSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({ ...base, kind: z.literal('match'), where: conditions, touched_pii: z.boolean().default(false) }),
    z.strictObject({ ...base, kind: z.literal('threshold'), where: conditions, key: keyField, count: z.number().int().min(1).max(100_000), window: duration }),
    z
      .strictObject({ ...base, kind: z.literal('absence'), within: duration, start: conditions.optional(), end: conditions.optional(), key: keyField.optional(), where: conditions.optional() })
      .superRefine((r, ctx) => {
        const perExecution = r.start !== undefined || r.end !== undefined;
        if (perExecution && (r.start === undefined || r.end === undefined)) ctx.addIssue({ code: 'custom', path: [r.start ? 'end' : 'start'], message: 'start and end go together' });
        if (perExecution && r.key !== undefined && r.key !== 'execution_id') ctx.addIssue({ code: 'custom', path: ['key'], message: 'a start/end rule is per execution; key must be execution_id or absent' });
        // Ignored there, it would make a rule meant for one workflow watch every workflow.
        if (perExecution && r.where !== undefined) ctx.addIssue({ code: 'custom', path: ['where'], message: 'a start/end rule tests its events with start and end; put the conditions there (where is for a silence rule, with key)' });
        if (!perExecution && r.key === undefined) ctx.addIssue({ code: 'custom', path: ['key'], message: 'required: the key that must keep sending (e.g. producer.service), or start and end' });
      }),
    z.strictObject({ ...base, kind: z.literal('gap'), where: conditions.default({}), grace: duration.default(30_000) }).superRefine((r, ctx) => {
      // Sequence numbers run over all events of an execution: a condition that picks some of them (event, status,
      // step_name...) leaves the others' numbers missing, and every complete execution would be reported with gaps.
      for (const f of Object.keys(r.where)) {
        if (!EXECUTION_FIELDS.includes(f as ConditionField)) {
          ctx.addIssue({ code: 'custom', path: ['where', f], message: `a gap rule checks all events of an execution; where may only test fields every event of it shares (${EXECUTION_FIELDS.join(', ')})` });
        }
      }
    }),
  ],
  { message: 'kind must be one of match, threshold, absence, gap' },
);

const fileSchema = z.strictObject({ rules: z.array(z.unknown()).max(10_000) });

/** Validates the rules of a parsed YAML document; a problem names the rule and the field. */
export function parseRules(doc: unknown, source: string, knownChannels?: ReadonlySet<string>): Rule[] {
  const file = fileSchema.safeParse(doc);
  if (!file.success) throw invalidRules(source, `${file.error.issues[0]!.path.join('.') || 'document'}: ${file.error.issues[0]!.message}`);
  const rules: Rule[] = [];
  const names = new Set<string>();
  file.data.rules.forEach((raw, i) => {
    const label = typeof (raw as { name?: unknown })?.name === 'string' ? `rule "${(raw as { name: string }).name}" (rules[${i}])` : `rules[${i}]`;
    const r = ruleSchema.safeParse(raw);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw invalidRules(source, `${label}: field ${issue.path.join('.') || 'kind'}: ${issue.message}`, { rule: label, field: issue.path.join('.') });
    }
    const v = r.data;
    if (names.has(v.name)) throw invalidRules(source, `${label}: field name: another rule has the same name`, { rule: label, field: 'name' });
    names.add(v.name);
    v.channels.forEach((c, j) => {
      if (knownChannels && !knownChannels.has(c)) {
        throw invalidRules(source, `${label}: field channels.${j}: channel "${c}" is not configured (known: ${[...knownChannels].join(', ') || 'none'})`, { rule: label, field: `channels.${j}` });
      }
    });
    const common = { name: v.name, severity: v.severity, channels: v.channels, throttleMs: v.throttle ?? 0, ...(v.description ? { description: v.description } : {}) };
    switch (v.kind) {
      case 'match':
        rules.push({ ...common, kind: 'match', where: v.where, touchedPii: v.touched_pii });
        break;
      case 'threshold':
        rules.push({ ...common, kind: 'threshold', where: v.where, key: v.key, count: v.count, windowMs: v.window });
        break;
      case 'absence':
        rules.push({
          ...common,
          kind: 'absence',
          withinMs: v.within,
          key: v.key ?? 'execution_id',
          where: v.where ?? {},
          ...(v.start && v.end ? { start: v.start, end: v.end } : {}),
        });
        break;
      case 'gap':
        rules.push({ ...common, kind: 'gap', where: v.where, graceMs: v.grace });
        break;
    }
  });
  return rules;
}

/** Reads and validates a rules file (YAML). Throws CONFIG_INVALID naming the file, the rule and the field. */
export function loadRulesFile(file: string, knownChannels?: ReadonlySet<string>): Rule[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    const at = (err as { linePos?: { line: number; col: number }[] }).linePos?.[0];
    throw invalidRules(file, `cannot read or parse the YAML (${(err as NodeJS.ErrnoException).code ?? (err as Error).name}${at ? ` at line ${at.line}, column ${at.col}` : ''})`);
  }
  return parseRules(doc, file, knownChannels);
}

function invalidRules(source: string, reason: string, details: Record<string, string> = {}): AuditlineError {
  return new AuditlineError('CONFIG_INVALID', `invalid alert rules in ${source}: ${reason}`, { details: { file: source, ...details } });
}
