import { z } from 'zod';
import { AuditlineError } from './errors.js';

/**
 * Validates a set of environment variables once, at start, into a typed
 * object. A bad value fails fast with the variable's name and the reason;
 * secret values are never echoed back.
 */
export function parseEnv<S extends z.ZodRawShape>(
  shape: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<z.ZodObject<S>> {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(shape)) {
    const raw = env[key];
    input[key] = raw === undefined || raw.trim() === '' ? undefined : raw.trim();
  }
  const notDecimal = Object.keys(shape).filter((key) => numberNotInDecimal(input[key], settingKind(shape[key])));
  if (notDecimal.length > 0) {
    const problems = notDecimal.map((key) => `${key}: must be ${settingKind(shape[key]) === 'integer' ? 'a whole number' : 'a number'} in decimal digits`);
    throw new AuditlineError('CONFIG_INVALID', `invalid setting ${problems.join('; ')}`, { details: { setting: notDecimal[0]! } });
  }
  const result = z.object(shape).safeParse(input);
  if (!result.success) {
    // A huge number breaks both the safe-integer range and the setting's own maximum: the maximum says it better.
    const issues = result.error.issues.filter((issue) => !(isIntRange(issue) && result.error.issues.some((o) => o !== issue && o.path[0] === issue.path[0])));
    const problems = issues.map((issue) => {
      const key = String(issue.path[0] ?? '');
      return `${issue.path.join('.')}: ${settingProblem(issue, shape[key])}`;
    });
    throw new AuditlineError('CONFIG_INVALID', `invalid setting ${problems.join('; ')}`, {
      details: { setting: String(result.error.issues[0]?.path[0] ?? '') },
    });
  }
  return result.data;
}

/**
 * A numeric setting's value that Number() reads as a number although it is
 * not written in decimal digits (`0x10`, `1e3`, `0b1010`): a typo or
 * another program's notation, refused rather than read as 16 or 1000.
 * Values that are no number at all, or no whole number where one is
 * wanted, are left to the schema.
 */
function numberNotInDecimal(raw: string | undefined, kind: SettingKind): boolean {
  if (raw === undefined || (kind !== 'integer' && kind !== 'number')) return false;
  return !/^[+-]?(\d+\.?\d*|\.\d+)$/.test(raw) && Number.isFinite(Number(raw));
}

type SettingKind = 'integer' | 'number' | 'enumerated' | 'text';

/**
 * What a setting's schema accepts, seen through default, optional and
 * transform wrappers: a whole number, a number, one of a fixed list (enum,
 * literal, boolean) or anything else (text, which may be a secret).
 */
export function settingKind(schema: unknown): SettingKind {
  let def = (schema as { def?: SchemaDef } | undefined)?.def;
  for (let depth = 0; def && depth < 10; depth++) {
    if (['default', 'prefault', 'optional', 'nullable', 'catch', 'readonly', 'nonoptional'].includes(def.type)) def = def.innerType?.def;
    else if (def.type === 'pipe') def = def.in?.def;
    else break;
  }
  if (!def) return 'text';
  if (def.type === 'number') {
    return (def.checks ?? []).some((c) => c._zod.def.check === 'number_format' && ['safeint', 'int32', 'uint32'].includes(c._zod.def.format ?? '')) ? 'integer' : 'number';
  }
  return ['enum', 'literal', 'boolean'].includes(def.type) ? 'enumerated' : 'text';
}

/** zod's check that an integer is within the safe range (±2^53 - 1), which `.int()` adds. */
function isIntRange(issue: z.core.$ZodIssue): boolean {
  return (issue.code === 'too_big' || issue.code === 'too_small') && issue.origin === 'int';
}

/** The part of a zod 4 schema's definition settingKind reads. */
interface SchemaDef {
  type: string;
  innerType?: { def: SchemaDef };
  in?: { def: SchemaDef };
  checks?: { _zod: { def: { check?: string; format?: string } } }[];
}

/**
 * The reason a setting's value is refused, for a person: zod's wording for a
 * value that is no number (`expected number, received NaN`) becomes `must be
 * a whole number` (or `a number`). The value itself is never quoted: a
 * secret pasted into the wrong variable (a password into a port) would
 * otherwise reach the logs.
 */
function settingProblem(issue: z.core.$ZodIssue, schema: unknown): string {
  const kind = settingKind(schema);
  if (kind !== 'integer' && kind !== 'number') return issue.message;
  if (issue.code === 'invalid_type') return kind === 'integer' ? 'must be a whole number' : 'must be a number';
  if (isIntRange(issue)) return `must be a whole number from -${Number.MAX_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}`;
  return issue.message;
}

/**
 * Refuses settings that only make sense together when some are missing
 * (credentials given in part are refused rather than dropped: a client would
 * connect without them, or with others). `values` holds the parsed settings,
 * undefined when not set; CONFIG_INVALID names the missing ones.
 */
export function requireSettings(values: Record<string, unknown>, names: readonly string[], rule: string): void {
  const missing = names.filter((name) => values[name] === undefined);
  if (missing.length > 0) {
    throw new AuditlineError('CONFIG_INVALID', `invalid setting ${missing.join(', ')}: not set (${rule})`, { details: { setting: missing[0]! } });
  }
}

/** A TCP port number given as a string. */
export const portVar = (fallback: number) =>
  z.coerce.number().int('must be an integer').min(1, 'must be a port 1-65535').max(65535, 'must be a port 1-65535').default(fallback);

/** "true"/"false"/"1"/"0"/"yes"/"no", case-insensitive. */
export const boolVar = (fallback: boolean) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', 'TRUE', 'FALSE', 'YES', 'NO'], {
      message: 'must be true or false',
    })
    .optional()
    .transform((v) => (v === undefined ? fallback : ['true', '1', 'yes'].includes(v.toLowerCase())));

/**
 * True when a URL carries a user name or password (`https://user:pw@host`).
 * Such a URL ends up whole in the error messages of fetch and of the
 * clients, and so in logs: credentials go in their own settings instead.
 */
export function urlHasCredentials(value: string): boolean {
  try {
    const url = new URL(value);
    return url.username !== '' || url.password !== '';
  } catch {
    return false;
  }
}

/** Why a URL with credentials is refused (the setting's own _USERNAME/_USER and _PASSWORD hold them). */
export const URL_CREDENTIALS_RULE = 'must not carry a user name or password (user:password@): set them in their own settings';

/** An http(s) URL without trailing slash and without credentials in it. */
export const urlVar = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => /^https?:\/\/[^\s]+$/.test(v), 'must be an http:// or https:// URL')
    .refine((v) => !urlHasCredentials(v), URL_CREDENTIALS_RULE)
    .transform((v) => v.replace(/\/+$/, ''));
