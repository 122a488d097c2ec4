import type { Command } from 'commander';
import { formatStatus, stackDown, stackStatus, stackUp, type ServiceStatus } from '../../infra/local-stack/stack.js';
import { loadStackSettings, SERVICE_NAMES, type ServiceName } from '../../infra/local-stack/settings.js';
import { UsageError } from '../exit.js';

const say = (message: string) => process.stderr.write(`${message}\n`);

function parseServices(value: string | undefined): ServiceName[] | undefined {
  if (value === undefined) return undefined;
  // `--only ''` names no service: never read as "all of them" (a script's empty list must not stop everything).
  const names = value.split(',').map((v) => v.trim());
  const unknown = names.filter((n) => !(SERVICE_NAMES as readonly string[]).includes(n));
  if (unknown.length > 0) throw new UsageError(`unknown service ${unknown.join(', ')}; known: ${SERVICE_NAMES.join(', ')}`);
  return names as ServiceName[];
}

export function registerStack(program: Command): void {
  const stack = program
    .command('stack')
    .description('start, stop and inspect the local Kafka, schema registry, ClickHouse and S3 services (no Docker needed)');

  stack
    .command('up')
    .description('provision what is missing, start every service not running, wait until each is healthy')
    .option('--only <services>', `comma-separated subset of ${SERVICE_NAMES.join(',')} (dependencies are added)`)
    .option('--json', 'print {"stackDir", "started", "services"} as JSON instead of a table, also when up fails ("started" then lists what to stop)')
    .action(async (opts: { only?: string; json?: boolean }) => {
      const settings = loadStackSettings();
      const begun = Date.now();
      say(`stack directory: ${settings.stackDir}`);
      const started: ServiceName[] = [];
      let rows: ServiceStatus[] | undefined;
      try {
        rows = await stackUp(settings, say, parseServices(opts.only), started);
      } finally {
        // Scripts stop exactly what this call started (`down --only`), whatever happened.
        if (opts.json) process.stdout.write(`${JSON.stringify({ stackDir: settings.stackDir, started, services: rows ?? null })}\n`);
      }
      say(`stack up in ${((Date.now() - begun) / 1000).toFixed(1)} s${started.length > 0 ? `; started ${started.join(', ')}` : '; all were running already'}`);
      if (!opts.json) process.stdout.write(`${formatStatus(rows)}\n`);
    });

  stack
    .command('down')
    .description('stop exactly the processes `stack up` started (by pid); data is kept')
    .option('--only <services>', `comma-separated subset of ${SERVICE_NAMES.join(',')} (the others keep running, e.g. to rehearse an outage)`)
    .action(async (opts: { only?: string }) => {
      const settings = loadStackSettings();
      say(`stack directory: ${settings.stackDir}`);
      await stackDown(settings, say, parseServices(opts.only));
    });

  stack
    .command('status')
    .description('state, endpoint, pid and log file of each service')
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: { json?: boolean }) => {
      const settings = loadStackSettings();
      say(`stack directory: ${settings.stackDir}`);
      const rows = await stackStatus(settings);
      process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatStatus(rows)}\n`);
      // Non-zero when anything is not healthy, so scripts can wait on it.
      if (rows.some((r) => r.state !== 'healthy')) process.exitCode = 3;
    });
}
