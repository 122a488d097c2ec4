import type { Command } from 'commander';
import { UsageError } from '../exit.js';

/** A long-running service `auditline run <name>` can start. */
export interface RunnableService {
  description: string;
  /** Default port of its /metrics, /healthz and /readyz (AUDITLINE_<SERVICE>_METRICS_PORT overrides it). */
  metricsPort: number;
  /** Runs until SIGTERM/SIGINT; resolves with the process exit code. Loaded lazily so other commands stay light. */
  run: () => Promise<number>;
}

/** Every service of this package, in pipeline start order; a new consumer adds one entry here. */
export const SERVICES: Readonly<Record<string, RunnableService>> = {
  tokenizer: {
    description: 'audit.raw -> audit.events: PII tokenized and encrypted, exactly once (docs/tokenizer.md)',
    metricsPort: 9465,
    run: async () => (await import('../../consumers/tokenizer/index.js')).runTokenizer(),
  },
  hotstore: {
    description: 'audit.events -> ClickHouse hot store (docs/hotstore.md)',
    metricsPort: 9464,
    run: async () => (await import('../../consumers/hotstore/index.js')).runHotstore(),
  },
  archiver: {
    description: 'audit.events -> S3 archive: Avro container files under Object Lock, signed digests, execution index (docs/archiver.md)',
    metricsPort: 9466,
    run: async () => (await import('../../consumers/archiver/index.js')).runArchiver(),
  },
  alerts: {
    description: 'audit.events -> alert rules -> signed webhooks (docs/alerts.md)',
    metricsPort: 9467,
    run: async () => (await import('../../consumers/alerts/index.js')).runAlerts(),
  },
};

/** A grace period for log lines to flush; then the process ends even if a client library left a handle open. */
const EXIT_GRACE_MS = 2_000;

export function registerRun(program: Command): void {
  const names = Object.keys(SERVICES);
  program
    .command('run')
    .description('run a consumer service in the foreground until SIGTERM/SIGINT (graceful shutdown)')
    .argument('<service>', `one of: ${names.join(', ')}`)
    .addHelpText(
      'after',
      `\nServices:\n${names.map((n) => `  ${n.padEnd(12)} ${SERVICES[n]!.description}`).join('\n')}\n\nEach serves /metrics, /healthz and /readyz (AUDITLINE_<SERVICE>_METRICS_PORT).\nExit codes: 0 stopped cleanly, 1 failed or shutdown timed out, 2 invalid setting.`,
    )
    .action(async (name: string) => {
      const service = SERVICES[name];
      if (!service) throw new UsageError(`unknown service ${name}; known: ${names.join(', ')}`);
      const code = await service.run();
      process.exitCode = code;
      setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
    });
}
