import type { ClickHouseClient } from '@clickhouse/client';
import type { RevealPolicy } from '../../consumers/tokenizer/index.js';
import type { ReportColumn, ReportDocument } from '../reports/document.js';
import { isoTime } from '../reports/produce.js';
import type { Period } from '../period.js';
import { clickhouseHoldings, configuredHoldings, type Holding } from './holdings.js';
import { accessUses, queryLogUses, type UseGroup } from './usage.js';

/** Columns of the access review (docs/reports.md). */
export const ACCESS_REVIEW_COLUMNS: readonly ReportColumn[] = [
  { key: 'entry', width: 7 },
  { key: 'holder', width: 24 },
  { key: 'role', width: 26 },
  { key: 'access', width: 22 },
  { key: 'object', width: 34 },
  { key: 'uses', width: 6 },
  { key: 'last_used', width: 23 },
  { key: 'flag', width: 12 },
  { key: 'finding', width: 40 },
];

export type ReviewFlag = 'UNUSED' | 'OUTSIDE_ROLE' | 'UNKNOWN_USE' | 'REFUSED' | 'GRANTS_UNREAD' | '';

export interface ReviewRow {
  entry: 'holding' | 'use';
  holder: string;
  role: string;
  access: string;
  object: string;
  uses: number | null;
  last_used: string;
  flag: ReviewFlag;
  finding: string;
}

export interface ReviewInput {
  client: ClickHouseClient;
  database: string;
  period: Period;
  policy: RevealPolicy;
  reportRoles: readonly string[];
  /** Review the ClickHouse grants of the definition (infra/clickhouse/access.ts) without reading the server's. */
  grantsFromDefinition?: boolean;
}

/** The review's rows and notes; `grantsUnread` says why the server's grants could not be read (the definition stood in). */
export interface AccessReview {
  rows: ReviewRow[];
  notes: string[];
  grantsUnread?: string;
}

/**
 * Who holds which access and who used it in the period. Holdings: ClickHouse
 * grants (read from the server, or the definition when it cannot be read),
 * reveal permissions (AUDITLINE_REVEAL_POLICY) and report roles
 * (AUDITLINE_REPORT_ROLES); a holding without use in the period is UNUSED.
 * Uses: every access record (reveals, report requests); one outside the
 * role's permissions (refused by the policy, or allowed for a role that no
 * longer holds the access) is OUTSIDE_ROLE.
 */
export async function accessReview(input: ReviewInput): Promise<AccessReview> {
  const { client, database, period } = input;
  const ch = await clickhouseHoldings(client, database, { fromDefinition: input.grantsFromDefinition === true });
  const queryLog = await queryLogUses(client, database, period);
  const uses = await accessUses(client, database, period);
  const notes = [ch.note];
  if (!queryLog.available) {
    notes.push('system.query_log does not exist on this ClickHouse server (the local chdb engine keeps none): reads by ClickHouse users cannot be counted, so their grants show UNKNOWN_USE');
  }
  const rows: ReviewRow[] = [];
  if (ch.unread !== undefined) {
    // First, so that nobody reads the holdings below as the server's.
    rows.push({
      entry: 'holding',
      holder: '(not read)',
      role: '',
      access: 'ClickHouse grants',
      object: 'system.grants',
      uses: null,
      last_used: '',
      flag: 'GRANTS_UNREAD',
      finding: `the server's grants could not be read (${ch.unread}); the holdings with source infra/clickhouse/access.ts are the intended access, not the real one, and a grant made outside it does not show`,
    });
  }
  for (const h of ch.holdings) {
    if (h.revoke) {
      // Access taken away: nothing to use, so neither UNUSED nor UNKNOWN_USE.
      rows.push(holdingRow(h, null, '', '', 'partial revoke: narrows a wider grant of the same holder'));
      continue;
    }
    if (!queryLog.available) {
      rows.push(holdingRow(h, null, '', 'UNKNOWN_USE', 'no query log to count reads'));
      continue;
    }
    const used = h.users.map((u) => queryLog.byUser.get(u)).filter((u) => u !== undefined);
    const count = used.reduce((n, u) => n + u.uses, 0);
    const last = used.map((u) => u.last_used).sort().at(-1) ?? '';
    rows.push(holdingRow(h, count, last, count === 0 ? 'UNUSED' : '', count === 0 ? `not used in ${describe(period)}` : ''));
  }
  for (const h of configuredHoldings(input.policy, input.reportRoles)) {
    const mine = uses.filter((u) => u.role === h.role && u.access === h.access && u.outcome !== 'refused');
    const count = mine.reduce((n, u) => n + u.uses, 0);
    const last = mine.map((u) => u.last_used).sort().at(-1) ?? '';
    rows.push(holdingRow(h, count, last, count === 0 ? 'UNUSED' : '', count === 0 ? `not used in ${describe(period)}` : ''));
  }
  const rolesOf = new Map<string, Set<string>>();
  for (const u of uses) rolesOf.set(u.principal, (rolesOf.get(u.principal) ?? new Set()).add(u.role));
  for (const u of uses) {
    const { flag, finding } = judgeUse(u, input.policy, input.reportRoles);
    const roles = [...rolesOf.get(u.principal)!];
    const several = roles.length > 1 ? `; acted in roles ${roles.sort().join(', ')}` : '';
    rows.push({ entry: 'use', holder: u.principal, role: u.role, access: u.access, object: `${u.object} (${u.outcome})`, uses: u.uses, last_used: u.last_used, flag, finding: `${finding}${several}`.replace(/^; /, '') });
  }
  return { rows, notes, ...(ch.unread !== undefined ? { grantsUnread: ch.unread } : {}) };
}

/** Whether one group of uses stayed within the role's permissions. */
export function judgeUse(u: UseGroup, policy: RevealPolicy, reportRoles: readonly string[]): { flag: ReviewFlag; finding: string } {
  if (u.access === 'reveal PII') {
    const rule = Object.prototype.hasOwnProperty.call(policy, u.role) ? policy[u.role] : undefined;
    const status = u.object.replace(/^executions: /, '');
    if (rule === undefined) return { flag: 'OUTSIDE_ROLE', finding: `role ${u.role} holds no reveal permission` };
    if (rule !== 'any' && !rule.includes(status)) return { flag: 'OUTSIDE_ROLE', finding: `role ${u.role} may reveal only ${rule.join(' | ')} executions, not ${status}` };
    return u.outcome === 'refused' ? { flag: 'REFUSED', finding: u.detail } : { flag: '', finding: '' };
  }
  if (!reportRoles.includes(u.role)) return { flag: 'OUTSIDE_ROLE', finding: `role ${u.role} may not request reports` };
  return u.outcome === 'refused' ? { flag: 'REFUSED', finding: u.detail } : { flag: '', finding: '' };
}

function holdingRow(h: Holding, uses: number | null, last: string, flag: ReviewFlag, finding: string): ReviewRow {
  return { entry: 'holding', holder: h.holder, role: h.role, access: h.access, object: h.object, uses, last_used: last, flag, finding: `${finding}${finding ? '; ' : ''}source: ${h.source}` };
}

function describe(period: Period): string {
  return `${isoTime(period.from).slice(0, 10)} to ${isoTime(period.to).slice(0, 10)}`;
}

/** The access review as a report document (rows in memory: their number is bounded by principals and grants, not by events). */
export function accessReviewDocument(review: AccessReview, label: string, period: Period, header: [string, string][]): ReportDocument {
  return {
    title: `Auditline access review ${label}`,
    parameters: [['period', `${isoTime(period.from)} to ${isoTime(period.to)} (end exclusive)`], ...header],
    notes: review.notes,
    columns: ACCESS_REVIEW_COLUMNS,
    rows: (async function* () {
      yield review.rows as unknown as Record<string, unknown>[];
    })(),
    totals: { countBy: ['entry', 'flag'] },
  };
}
