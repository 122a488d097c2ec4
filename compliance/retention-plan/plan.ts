import type { ClickHouseClient } from '@clickhouse/client';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Admin } from 'kafkajs';
import { errorMessage, isAuditlineError } from '../../core/errors.js';
import { DEFAULT_MIGRATIONS_DIR } from '../../infra/clickhouse/migrate.js';
import { describeTopics } from '../../infra/kafka/topics.js';
import { retentionDaysFor, type RetentionSettings } from '../../infra/retention.js';
import { lifecycleRules, readBucketState } from '../../infra/s3/bootstrap.js';
import { migrationVariables } from '../../infra/setup.js';
import { queryRows } from '../clickhouse.js';
import { declaredTtls, serverTtls, ttlEnforces } from '../../infra/clickhouse/ttl.js';

export type PlanStatus = 'ok' | 'DIFFERS' | 'MISSING';

/** One place where a retention is enforced: what the settings ask for and what the running service has. */
export interface EnforcementRow {
  store: 'kafka' | 'clickhouse' | 's3' | 'keys';
  object: string;
  /** The mechanism, e.g. `retention.ms`, `TTL (column input)`, `Object Lock default retention`. */
  enforced_by: string;
  /** The requirement (or retention setting) the value comes from. */
  requirement: string;
  expected: string;
  actual: string;
  status: PlanStatus;
}

export interface RetentionPlan {
  requirements: { requirement: string; description: string; source: string; retention_days: number; access: string }[];
  enforcement: EnforcementRow[];
  differences: number;
}

export interface PlanDeps {
  retention: RetentionSettings;
  admin: Admin;
  clickhouse: ClickHouseClient;
  database: string;
  s3: S3Client;
  bucket: string;
  /** Prefix of the topic names (isolated deployments and tests). */
  topicPrefix?: string;
  migrationsDir?: string;
  now?: () => number;
}

const DAY_MS = 86_400_000;
const days = (n: number) => `${Number.isInteger(n) ? n : n.toFixed(3)} days`;

/**
 * The retention requirements and, per store, what enforces them as read
 * back from the running services: topic retention.ms (describeConfigs),
 * ClickHouse TTLs (system.tables), S3 Object Lock and lifecycle rules,
 * and key expiry (age of the oldest subject key not under legal hold).
 * Every value is compared with what the retention settings derive.
 */
export async function retentionPlan(deps: PlanDeps): Promise<RetentionPlan> {
  const { retention } = deps;
  const requirements = Object.entries(retention.requirements).map(([name, r]) => ({ requirement: name, description: r.description, source: r.source, retention_days: r.retention_days, access: r.access }));
  const enforcement = [...(await kafkaRows(deps)), ...(await clickhouseRows(deps)), ...(await s3Rows(deps)), ...(await keyRows(deps))];
  return { requirements, enforcement, differences: enforcement.filter((r) => r.status !== 'ok').length };
}

async function kafkaRows({ retention, admin, topicPrefix = '' }: PlanDeps): Promise<EnforcementRow[]> {
  const existing = new Set(await admin.listTopics());
  const wanted = Object.entries(retention.topicRetentionMs).map(([name, ms]) => ({ name: `${topicPrefix}${name}`, ms, setting: name }));
  const present = wanted.filter((t) => existing.has(t.name)).map((t) => t.name);
  const described = present.length > 0 ? await describeTopics(admin, present) : new Map();
  return wanted.map((t): EnforcementRow => {
    const config = described.get(t.name)?.config as Record<string, string> | undefined;
    const actual = config?.['retention.ms'];
    // retention.ms deletes only under cleanup.policy `delete` (alone or with `compact`); compaction alone keeps each key's latest record for ever.
    const policy = config?.['cleanup.policy'];
    const deletes = policy === undefined || policy.split(',').map((p) => p.trim()).includes('delete');
    return {
      store: 'kafka',
      object: `topic ${t.name}`,
      enforced_by: 'retention.ms',
      requirement: retention.topicRetentionSource[t.setting] ?? `topics.${t.setting}`,
      expected: String(t.ms),
      actual: actual === undefined ? 'topic missing' : deletes ? actual : `${actual} (cleanup.policy ${policy}: nothing is deleted by age)`,
      status: actual === undefined ? 'MISSING' : Number(actual) === t.ms && deletes ? 'ok' : 'DIFFERS',
    };
  });
}

async function clickhouseRows({ retention, clickhouse, database, migrationsDir }: PlanDeps): Promise<EnforcementRow[]> {
  const variables = migrationVariables(retention);
  const classOf: Record<string, 'pii' | 'sox' | 'internal'> = { ttl_days_pii: 'pii', ttl_days_sox: 'sox', ttl_days_internal: 'internal' };
  const tables = await queryRows<{ name: string; create_table_query: string }>(clickhouse, 'reading table definitions', 'SELECT name, create_table_query FROM system.tables WHERE database = {db:String}', { db: database });
  const onServer = new Map(tables.map((t) => [t.name, serverTtls(t.name, t.create_table_query)]));
  return declaredTtls(migrationsDir ?? DEFAULT_MIGRATIONS_DIR).map((d): EnforcementRow => {
    const expected = variables[d.variable];
    const cls = classOf[d.variable];
    const requirement = cls ? `${retention.dataClasses[cls]} (data class ${cls})` : d.variable;
    const rules = onServer.get(d.table);
    const rule = rules?.find((r) => r.column === d.column);
    const actual = rule?.days;
    const beyond = rule?.beyond !== undefined ? `, then ${rule.beyond} (not a deletion of every row)` : '';
    return {
      store: 'clickhouse',
      object: `${database}.${d.table}`,
      enforced_by: d.column ? `TTL of column ${d.column}` : 'table TTL',
      requirement,
      expected: expected === undefined ? 'unknown variable' : days(expected),
      actual: rules === undefined ? 'table missing' : actual === undefined ? 'no TTL' : `${days(actual)}${beyond}`,
      status: rules === undefined ? 'MISSING' : ttlEnforces(rule, expected ?? NaN) ? 'ok' : 'DIFFERS',
    };
  });
}

async function s3Rows({ retention, s3, bucket }: PlanDeps): Promise<EnforcementRow[]> {
  const sox = retentionDaysFor(retention, 'sox');
  const soxName = retention.dataClasses.sox;
  let state;
  try {
    state = await readBucketState(s3, bucket);
  } catch (err) {
    // S3 unreachable is a failure of the check (exit 1), not a finding: an outage must not read as non-compliance.
    if (isAuditlineError(err, 'S3_UNAVAILABLE')) throw err;
    return [{ store: 's3', object: `bucket ${bucket}`, enforced_by: 'Object Lock, lifecycle', requirement: soxName, expected: `COMPLIANCE ${sox} days`, actual: `cannot read: ${errorMessage(err)}`, status: 'MISSING' }];
  }
  const lock = state.objectLock;
  const rows: EnforcementRow[] = [
    {
      store: 's3',
      object: `bucket ${bucket}`,
      enforced_by: 'Object Lock default retention',
      requirement: soxName,
      expected: `COMPLIANCE ${sox} days`,
      actual: lock.enabled ? `${lock.mode ?? 'no mode'} ${lock.days ?? 'no'} days` : 'Object Lock off',
      status: lock.enabled && lock.mode === 'COMPLIANCE' && lock.days === sox ? 'ok' : 'DIFFERS',
    },
  ];
  for (const want of lifecycleRules(retention)) {
    const got = state.lifecycleRules.find((r) => r.ID === want.ID);
    const describe = (r: typeof want) => `${r.Status} expire ${r.Expiration?.Days ?? '-'} d, noncurrent ${r.NoncurrentVersionExpiration?.NoncurrentDays ?? '-'} d`;
    const same = got !== undefined && got.Status === want.Status && got.Expiration?.Days === want.Expiration?.Days && got.NoncurrentVersionExpiration?.NoncurrentDays === want.NoncurrentVersionExpiration?.NoncurrentDays;
    rows.push({
      store: 's3',
      object: `bucket ${bucket} rule ${want.ID}`,
      enforced_by: 'lifecycle rule',
      requirement: `${soxName} + 1 day`,
      expected: describe(want),
      actual: got ? describe(got) : 'rule missing',
      status: got === undefined ? 'MISSING' : same ? 'ok' : 'DIFFERS',
    });
  }
  return rows;
}

async function keyRows({ retention, clickhouse, database, now = Date.now }: PlanDeps): Promise<EnforcementRow[]> {
  const gdpr = retentionDaysFor(retention, 'pii');
  const [row] = await queryRows<{ keys: number | string; oldest: string; last_expiry: string }>(
    clickhouse,
    'reading the key store',
    `SELECT count() AS keys, toString(toUnixTimestamp64Milli(min(created_at))) AS oldest,
            (SELECT toString(max(erased_at)) FROM ${database}.erasures WHERE kind = 'expiry') AS last_expiry
     FROM ${database}.subject_keys
     WHERE subject NOT IN (SELECT subject FROM ${database}.subject_legal_holds GROUP BY subject HAVING argMax(hold, set_at))`,
  );
  const keys = Number(row?.keys ?? 0);
  const ageDays = keys > 0 ? (now() - Number(row!.oldest)) / DAY_MS : 0;
  // `erase --expired` runs daily: a key may outlive the retention by up to a day.
  const overdue = ageDays > gdpr + 1;
  return [
    {
      store: 'keys',
      object: `${database}.subject_keys`,
      enforced_by: `erase --expired (last run ${row?.last_expiry && !row.last_expiry.startsWith('1970') ? row.last_expiry : 'never'})`,
      requirement: `${retention.dataClasses.pii} (data class pii)`,
      expected: `oldest key <= ${gdpr} days (+1 day between runs)`,
      actual: keys === 0 ? 'no keys outside legal hold' : `oldest key ${ageDays.toFixed(1)} days (${keys} keys outside legal hold)`,
      status: overdue ? 'DIFFERS' : 'ok',
    },
  ];
}
