import { z } from 'zod';
import { parseEnv } from '../core/env.js';

/** Settings of the compliance commands (docs/configuration.md, docs/reports.md). */
export interface ComplianceSettings {
  /** Roles that may request reports and access reviews (AUDITLINE_REPORT_ROLES). */
  reportRoles: string[];
  /** Most table rows a PDF holds; totals always cover every row (AUDITLINE_REPORT_PDF_MAX_ROWS). */
  pdfMaxRows: number;
  /** Seconds between progress lines on stderr (AUDITLINE_REPORT_PROGRESS_SECONDS; 0: none). */
  progressSeconds: number;
  /** Roles that may run `erase` and `legal-hold` when the principals file identifies the caller (AUDITLINE_ERASE_ROLES). */
  eraseRoles: string[];
}

export const DEFAULT_REPORT_ROLES = ['compliance', 'legal', 'security'] as const;
export const DEFAULT_ERASE_ROLES = ['compliance', 'legal'] as const;

const roleList = (defaults: readonly string[]) =>
  z
    .string()
    .default(defaults.join(','))
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .refine((list) => list.length > 0 && list.every((r) => /^[a-z][a-z0-9_-]{0,63}$/.test(r)), 'must be a comma-separated list of role names (a-z 0-9 _ -)');

const shape = {
  AUDITLINE_REPORT_ROLES: roleList(DEFAULT_REPORT_ROLES),
  AUDITLINE_ERASE_ROLES: roleList(DEFAULT_ERASE_ROLES),
  AUDITLINE_REPORT_PDF_MAX_ROWS: z.coerce.number().int('must be an integer').min(1, 'must be at least 1').max(1_000_000, 'must be at most 1000000').default(20_000),
  AUDITLINE_REPORT_PROGRESS_SECONDS: z.coerce.number().min(0, 'must be at least 0').max(3_600, 'must be at most 3600').default(2),
};

/** Names of the compliance settings (cli/known-settings.ts). */
export const COMPLIANCE_SETTINGS: readonly string[] = Object.keys(shape);

/** Reads and validates the compliance settings once; CONFIG_INVALID names the bad variable. */
export function loadComplianceSettings(env: NodeJS.ProcessEnv = process.env): ComplianceSettings {
  const c = parseEnv(shape, env);
  return { reportRoles: c.AUDITLINE_REPORT_ROLES, pdfMaxRows: c.AUDITLINE_REPORT_PDF_MAX_ROWS, progressSeconds: c.AUDITLINE_REPORT_PROGRESS_SECONDS, eraseRoles: c.AUDITLINE_ERASE_ROLES };
}
