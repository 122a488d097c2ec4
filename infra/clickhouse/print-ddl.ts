import { parseArgs } from 'node:util';
import { loadRetention } from '../retention.js';
import { PRINCIPAL_NAMES, toScript, type PrincipalName } from './access.js';
import { clusterStatements, singleNodeAccessStatements } from './ddl-scripts.js';

/**
 * Prints ClickHouse DDL to stdout (infra/clickhouse/README.md):
 *
 *   node dist/infra/clickhouse/print-ddl.js access  [--database audit] [--user writer=<sha256 hex>]...
 *   node dist/infra/clickhouse/print-ddl.js cluster --cluster <name> [--database audit] [--retention <file>] [--user ...]
 *
 * `--user <principal>=<sha256 hex of its password>` adds CREATE USER for
 * that principal; without it only roles and grants are printed.
 */
const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    database: { type: 'string', default: 'audit' },
    cluster: { type: 'string' },
    retention: { type: 'string' },
    user: { type: 'string', multiple: true, default: [] },
  },
});

const users: Partial<Record<PrincipalName, { passwordSha256Hex: string }>> = {};
for (const spec of values.user) {
  const [name, hash] = spec.split('=', 2) as [string, string | undefined];
  if (!PRINCIPAL_NAMES.includes(name as PrincipalName) || !hash) fail(`--user must be <${PRINCIPAL_NAMES.join('|')}>=<sha256 hex>, got ${name}=...`);
  users[name as PrincipalName] = { passwordSha256Hex: hash! };
}
const common = { database: values.database, ...(values.user.length > 0 ? { users } : {}) };

try {
  if (positionals[0] === 'access') {
    process.stdout.write(toScript(singleNodeAccessStatements(common), '-- Auditline hot store access (infra/clickhouse/access.ts), single server.\n'));
  } else if (positionals[0] === 'cluster') {
    if (!values.cluster) fail('cluster needs --cluster <name>');
    const retention = loadRetention(values.retention);
    process.stdout.write(
      toScript(
        clusterStatements({ ...common, cluster: values.cluster!, retention }),
        `-- Auditline hot store on cluster ${values.cluster} (infra/clickhouse/cluster-ddl.ts), TTLs from ${retention.file}.\n`,
      ),
    );
  } else {
    fail('usage: print-ddl.js access|cluster [--cluster <name>] [--database <db>] [--retention <file>] [--user <principal>=<sha256 hex>]');
  }
} catch (err) {
  fail((err as Error).message);
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}
