import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { createKafka } from '../../core/clients/kafka.js';
import { createS3 } from '../../core/clients/s3.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { loadRetention } from '../../infra/retention.js';
import { retentionPlan, type RetentionPlan } from '../../compliance/index.js';
import { UsageError } from '../exit.js';
import { COMPLIANCE_EXIT } from './report-output.js';
import { renderRows } from './query.js';
import { TOPIC_NAME_CHARS, TOPIC_NAME_MAX_LENGTH } from '../../core/kafka-names.js';

/**
 * `--topic-prefix`: empty, or characters a Kafka topic name may hold, short enough that every prefixed topic
 * name stays within 249 characters; UsageError otherwise. An invalid prefix names topics that cannot exist, and
 * the plan would report every one of them missing (exit 8) instead of the mistake.
 */
export function parseTopicPrefix(prefix: string, topics: readonly string[]): string {
  if (!TOPIC_NAME_CHARS.test(prefix)) throw new UsageError(`--topic-prefix ${JSON.stringify(prefix.slice(0, 60))}: a Kafka topic name holds only A-Z a-z 0-9 . _ -`);
  const longest = topics.reduce((a, t) => (t.length > a.length ? t : a), '');
  if (prefix.length + longest.length > TOPIC_NAME_MAX_LENGTH) {
    throw new UsageError(`--topic-prefix: ${prefix.length} characters make ${prefix.length + longest.length}-character topic names (${longest}); Kafka allows at most ${TOPIC_NAME_MAX_LENGTH}`);
  }
  return prefix;
}

export function registerRetention(program: Command): void {
  const retention = program.command('retention').description('retention requirements and what enforces them');
  retention
    .command('plan')
    .description('the requirements table and, per store, the enforced retention read back from Kafka, ClickHouse, S3 and the key store, compared with the settings')
    .option('--retention <file>', 'retention settings file (default: AUDITLINE_RETENTION_FILE or infra/retention.yaml)')
    .option('--topic-prefix <prefix>', 'prefix of the topic names (isolated deployments; characters A-Z a-z 0-9 . _ -, the prefixed names at most 249)', '')
    .option('--format <format>', 'output: table | json', 'table')
    .addHelpText('after', `\nExit codes: 0 everything matches, 1 failure, 2 wrong usage, ${COMPLIANCE_EXIT.retentionDiffers} at least one enforced value differs from the settings (or is missing); a store that cannot be reached is a failure (1), not a difference.`)
    .action(async (opts: { retention?: string; topicPrefix: string; format: string }) => {
      if (opts.format !== 'table' && opts.format !== 'json') throw new UsageError(`--format ${opts.format}: expected table or json`);
      const settings = loadRetention(opts.retention ?? process.env.AUDITLINE_RETENTION_FILE);
      const topicPrefix = parseTopicPrefix(opts.topicPrefix, Object.keys(settings.topicRetentionMs));
      const endpoints = loadEndpoints();
      const admin = createKafka(endpoints.kafka).admin();
      const clickhouse = createClickHouse(endpoints.clickhouse);
      const s3 = createS3(endpoints.s3);
      await admin.connect();
      try {
        const plan = await retentionPlan({ retention: settings, admin, clickhouse, database: endpoints.clickhouse.database, s3, bucket: endpoints.s3.bucket, topicPrefix });
        process.stdout.write(opts.format === 'json' ? `${JSON.stringify({ retention_file: settings.file, ...plan }, null, 2)}\n` : planText(plan, settings.file));
        if (plan.differences > 0) {
          process.stderr.write(`retention plan: ${plan.differences} enforced value(s) differ from ${settings.file}\n`);
          process.exitCode = COMPLIANCE_EXIT.retentionDiffers;
        }
      } finally {
        await admin.disconnect();
        await clickhouse.close();
        s3.destroy();
      }
    });
}

function planText(plan: RetentionPlan, file: string): string {
  return [
    `Requirements (${file})`,
    renderRows(plan.requirements, ['requirement', 'description', 'source', 'retention_days', 'access'], 'table'),
    'Enforcement (read back from the running services)',
    renderRows(plan.enforcement as unknown as Record<string, unknown>[], ['status', 'store', 'object', 'enforced_by', 'requirement', 'expected', 'actual'], 'table'),
    plan.differences === 0 ? 'Every enforced value matches the settings.\n' : `${plan.differences} enforced value(s) DIFFER from the settings.\n`,
  ].join('\n');
}
