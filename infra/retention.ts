import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { AuditlineError } from '../core/errors.js';
import { assetPath } from '../core/paths.js';

const requirement = z
  .object({
    description: z.string().min(1),
    source: z.string().min(1),
    retention_days: z.number().int().positive(),
    access: z.enum(['open', 'restricted']),
  })
  .strict();

const topicRetention = z
  .object({
    retention_hours: z.number().int().positive().optional(),
    retention_from: z.string().optional(),
  })
  .strict()
  .refine((t) => (t.retention_hours === undefined) !== (t.retention_from === undefined), {
    message: 'set exactly one of retention_hours or retention_from',
  });

const settingsSchema = z
  .object({
    requirements: z.record(z.string().regex(/^[a-z][a-z0-9_]*$/), requirement),
    data_classes: z.object({ pii: z.string(), sox: z.string(), internal: z.string() }).strict(),
    topics: z.record(z.string(), topicRetention),
  })
  .strict();

export type RetentionRequirement = z.infer<typeof requirement>;

/** The retention settings, validated and resolved (every reference checked). */
export interface RetentionSettings {
  file: string;
  requirements: Record<string, RetentionRequirement>;
  /** Requirement name governing each schema data class. */
  dataClasses: Record<'pii' | 'sox' | 'internal', string>;
  /** Resolved retention of each topic in milliseconds. */
  topicRetentionMs: Record<string, number>;
  /** Where each topic's retention comes from: `topics.<t>.retention_hours`, or `<requirement> (topics.<t>.retention_from)`. */
  topicRetentionSource: Record<string, string>;
}

export const DEFAULT_RETENTION_FILE = assetPath('infra', 'retention.yaml');

/**
 * The access each data class has in Auditline, and what enforces it. A
 * requirement's `access` is checked against these at load: a value the code
 * does not enforce would read as a control that is not there.
 */
export const ENFORCED_ACCESS: Readonly<Record<'pii' | 'sox' | 'internal', { access: 'open' | 'restricted'; how: string }>> = {
  pii: { access: 'restricted', how: 'tokenized before Kafka consumers see it, PII columns hidden from the operational ClickHouse role, cleartext only through the reveal policy, every reveal recorded' },
  sox: { access: 'restricted', how: 'the seven-year record is the archive under Object Lock, read with the bucket credentials; the hot store keeps these columns only for the operational retention, as the debugging copy' },
  internal: { access: 'open', how: 'the operational ClickHouse role reads every column but the PII ones' },
};

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Reads and validates a retention file; errors name the file and the bad key. */
export function loadRetention(file: string = DEFAULT_RETENTION_FILE): RetentionSettings {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AuditlineError('RETENTION_INVALID', `cannot read retention settings ${file}: ${(err as Error).message}`, { cause: err });
  }
  const parsed = settingsSchema.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new AuditlineError('RETENTION_INVALID', `retention settings ${file}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const s = parsed.data;
  const known = (name: string, where: string): RetentionRequirement => {
    const r = s.requirements[name];
    if (!r) throw new AuditlineError('RETENTION_INVALID', `retention settings ${file}: ${where} names unknown requirement "${name}"`);
    return r;
  };
  for (const [cls, name] of Object.entries(s.data_classes)) known(name, `data_classes.${cls}`);
  for (const cls of Object.keys(ENFORCED_ACCESS) as (keyof typeof ENFORCED_ACCESS)[]) {
    const name = s.data_classes[cls];
    const { access, how } = ENFORCED_ACCESS[cls];
    if (known(name, `data_classes.${cls}`).access !== access) {
      throw new AuditlineError(
        'RETENTION_INVALID',
        `retention settings ${file}: requirements.${name}.access: data class ${cls} is ${access} in Auditline (${how}); "${s.requirements[name]!.access}" is not enforced anywhere, so it is refused (docs/retention.md, "Access")`,
      );
    }
  }
  const topicRetentionMs: Record<string, number> = {};
  const topicRetentionSource: Record<string, string> = {};
  for (const [topic, t] of Object.entries(s.topics)) {
    topicRetentionMs[topic] =
      t.retention_hours !== undefined ? t.retention_hours * HOUR_MS : known(t.retention_from!, `topics.${topic}.retention_from`).retention_days * DAY_MS;
    topicRetentionSource[topic] = t.retention_hours !== undefined ? `topics.${topic}.retention_hours` : `${t.retention_from!} (topics.${topic}.retention_from)`;
  }
  return { file, requirements: s.requirements, dataClasses: s.data_classes, topicRetentionMs, topicRetentionSource };
}

/** Retention in days of the requirement that governs a data class. */
export function retentionDaysFor(settings: RetentionSettings, dataClass: 'pii' | 'sox' | 'internal'): number {
  return settings.requirements[settings.dataClasses[dataClass]]!.retention_days;
}
