import type { Command } from 'commander';
import { z } from 'zod';
import { loadEndpoints } from '../../core/endpoints.js';
import { parseEnv } from '../../core/env.js';
import { loadRetention } from '../../infra/retention.js';
import { setupAll } from '../../infra/setup.js';
import { smokeRun } from '../smoke.js';

const say = (message: string) => process.stderr.write(`${message}\n`);

/** Settings of `setup` only (docs/configuration.md). */
export const SETUP_SETTINGS = {
  AUDITLINE_KAFKA_REPLICATION_FACTOR: z.coerce.number().int('must be an integer').min(1, 'must be at least 1').max(16, 'must be at most 16').optional(),
};

export function registerSetup(program: Command): void {
  program
    .command('setup')
    .description('create/update topics, register schemas, apply ClickHouse migrations and bootstrap the archive bucket (idempotent)')
    .option('--retention <file>', 'retention settings file (default: AUDITLINE_RETENTION_FILE or infra/retention.yaml)')
    .action(async (opts: { retention?: string }) => {
      const retention = loadRetention(opts.retention ?? process.env.AUDITLINE_RETENTION_FILE);
      const { AUDITLINE_KAFKA_REPLICATION_FACTOR: replicationFactor } = parseEnv(SETUP_SETTINGS, process.env);
      await setupAll(loadEndpoints(), retention, say, { replicationFactor });
    });

  program
    .command('smoke')
    .description('publish one sample execution to audit.raw through the registry and read it back')
    .action(async () => {
      const result = await smokeRun(loadEndpoints());
      process.stdout.write(
        `smoke ok: ${result.events} events of execution ${result.executionId} written and read back (schema id ${result.schemaId}, ${result.roundTripMs} ms)\n`,
      );
    });
}
