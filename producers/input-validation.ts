import { z } from 'zod';
import { pathSegment } from './json-text.js';
import { invalidInput } from './producer-errors.js';
import type { DecisionInput, FinishOptions, FinishStatus, RecordStepInput, StartExecutionInput, StepOptions } from './types.js';

/**
 * Validation of recording calls. A failure throws PRODUCER_INVALID_INPUT
 * naming the argument path and the rule, never the value, before anything
 * is recorded.
 */

const name = (max: number) => z.string({ message: 'must be a string' }).min(1, 'must not be empty').max(max, `must be at most ${max} characters`);
const uuid = z.string({ message: 'must be a string' }).regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a UUID');
const positiveInt = z.number({ message: 'must be a number' }).int('must be an integer').min(1, 'must be at least 1').max(2_147_483_647, 'must fit in 32 bits');
const time = z.union([z.number().int().min(0), z.date()], { message: 'must be epoch milliseconds or a Date' });
const TRIGGERS = ['webhook', 'schedule', 'manual', 'api'] as const;
const STEP_STATUSES = ['success', 'failed', 'skipped'] as const;
export const FINISH_STATUSES = ['success', 'failed', 'partial'] as const;

const startSchema = z.strictObject({
  workflowId: name(200),
  workflowName: name(500).optional(),
  workflowVersion: name(100).optional(),
  trigger: z.enum(TRIGGERS, { message: `must be one of ${TRIGGERS.join(', ')}` }),
  triggeredBy: z.strictObject(
    { kind: z.enum(['user', 'system', 'service'], { message: 'must be one of user, system, service' }), id: name(200) },
    { message: 'must be an object {kind, id}' },
  ),
  input: z.unknown().optional(),
  correlationId: name(200).optional(),
  parentExecutionId: uuid.optional(),
  executionId: uuid.optional(),
});

const stepOptionsShape = { input: z.unknown().optional(), attempt: positiveInt.optional(), stepId: positiveInt.optional() };
const stepOptionsSchema = z.strictObject(stepOptionsShape);

const recordStepSchema = z
  .strictObject({
    ...stepOptionsShape,
    name: name(500),
    status: z.enum(STEP_STATUSES, { message: `must be one of ${STEP_STATUSES.join(', ')}` }),
    startTime: time,
    endTime: time,
    output: z.unknown().optional(),
    error: z.unknown().optional(),
  })
  .refine((s) => toMillis(s.endTime) >= toMillis(s.startTime), { path: ['endTime'], message: 'must not be before startTime' });

const decisionSchema = z.strictObject({
  condition: name(10_000),
  taken: name(500),
  reason: z.string({ message: 'must be a string' }).optional(),
  values: z
    .custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v), 'must be a JSON object')
    .optional(),
  stepId: positiveInt.nullable().optional(),
});

const finishOptionsSchema = z.strictObject({ output: z.unknown().optional(), error: z.unknown().optional() });
// Built once: constructing a zod schema costs ~30 µs, far more than a parse, and step() runs on every step.
const stepNameSchema = name(500);

export const validateStart = (v: unknown): StartExecutionInput => parse(startSchema, v, 'startExecution');
export const validateStepOptions = (v: unknown): StepOptions => parse(stepOptionsSchema, v ?? {}, 'step options');
export const validateRecordStep = (v: unknown): RecordStepInput => parse(recordStepSchema, v, 'recordStep');
export const validateDecision = (v: unknown): DecisionInput => parse(decisionSchema, v, 'decision');
export const validateFinishOptions = (v: unknown): FinishOptions => parse(finishOptionsSchema, v ?? {}, 'finish options');

export function validateStepName(v: unknown): string {
  return parse(stepNameSchema, v, 'step name');
}

export function validateFinishStatus(v: unknown): FinishStatus {
  if (typeof v === 'string' && (FINISH_STATUSES as readonly string[]).includes(v)) return v as FinishStatus;
  throw invalidInput('finish status', `must be one of ${FINISH_STATUSES.join(', ')}`);
}

export function toMillis(t: number | Date): number {
  return typeof t === 'number' ? t : t.getTime();
}

function parse<T>(schema: z.ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  // Keys are named only when they look like field names: an unknown key can be data (a map keyed by e-mail addresses).
  const path = [...issue.path, ...keys.slice(0, 1)].map((p) => (typeof p === 'number' ? `[${p}]` : pathSegment(String(p)))).join('');
  const message = issue.code === 'unrecognized_keys' ? 'unknown property' : issue.message;
  const required = issue.code === 'invalid_type' && valueAt(value, issue.path) === undefined;
  throw invalidInput(`${where}${path}`, required ? 'required' : message);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}
