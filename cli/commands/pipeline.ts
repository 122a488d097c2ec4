import type { Command } from 'commander';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadArchiverRollMs } from '../../consumers/archiver/config.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { portVar } from '../../core/env.js';
import { freePort } from '../../core/free-port.js';
import { assetPath, packageRoot } from '../../core/paths.js';
import { settingsPrefix } from '../../core/service/settings.js';
import { UsageError } from '../exit.js';
import { intOption } from '../options.js';
import { Supervisor, type ServiceStatus, type SupervisedService } from '../pipeline/supervisor.js';
import { demoCommand, randomSeed } from './demo.js';
import { SERVICES } from './run.js';

export interface PipelineOptions {
  services?: string;
  logDir: string;
  readyTimeout: number;
  demo: number;
  demoRate: number;
  exitAfterDemo: boolean;
}

const say = (line: string) => process.stderr.write(`${line}\n`);
const cliEntry = fileURLToPath(new URL('../main.js', import.meta.url));

/**
 * The services to run, each with its effective metrics port. Port 0 means a
 * free one, as for `run`; the supervisor must know it (readiness probe,
 * state table), so it is picked here, on the service's metrics host, and
 * handed to the service (kept across its restarts).
 */
export async function pipelineServices(list: string | undefined, env: NodeJS.ProcessEnv = process.env): Promise<SupervisedService[]> {
  const known = Object.keys(SERVICES);
  // `--services ''` (a script's empty list) names no service: never read as "all of them", as `stack --only ''`.
  const names = list === undefined ? known : list.split(',').map((s) => s.trim());
  if (names.some((n) => n === '')) throw new UsageError(`--services ${JSON.stringify(list)}: expected a comma-separated list of ${known.join(', ')} without empty entries`);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new UsageError(`--services: unknown ${unknown.join(', ')}; known: ${known.join(', ')}`);
  const repeated = names.filter((n, i) => names.indexOf(n) !== i);
  // Two processes of one service would share its metrics port and its log file.
  if (repeated.length > 0) throw new UsageError(`--services: ${[...new Set(repeated)].join(', ')} named more than once`);
  const services: SupervisedService[] = [];
  for (const name of names) {
    const variable = `${settingsPrefix(name)}METRICS_PORT`;
    if (env[variable]?.trim() === '0') {
      const port = await freePort(env[`${settingsPrefix(name)}METRICS_HOST`]?.trim() || '0.0.0.0');
      services.push({ name, metricsPort: port, env: { [variable]: String(port) } });
      continue;
    }
    const parsed = portVar(SERVICES[name]!.metricsPort).safeParse(env[variable]);
    if (!parsed.success) throw new UsageError(`${variable}: must be a port number (0-65535; 0 picks a free one)`);
    services.push({ name, metricsPort: parsed.data });
  }
  return services;
}

/** Port of the local webhook sink `pipeline` runs for the alert channels (local stack only). */
export const LOCAL_SINK_PORT = 9470;

/**
 * With the local stack and no webhook URLs configured, the alerts service's
 * channels (infra/alerts/channels.yaml) point at a local webhook sink
 * (infra/docker/webhook-sink.mjs, also used by docker-compose.yml) that logs
 * every alert with its signature checked; loopback targets are allowed for
 * it only then. Also rolls archive files every minute instead of five, so a
 * demo shows archived objects soon. Returns the sink to supervise, if any.
 */
export function localPipelineDefaults(services: readonly SupervisedService[], env: NodeJS.ProcessEnv = process.env): SupervisedService | undefined {
  if (!loadEndpoints(env).usesLocalStack) return undefined;
  if (services.some((s) => s.name === 'archiver')) env.AUDITLINE_ARCHIVER_ROLL_MS ??= '60000';
  const urls = ['AUDITLINE_ALERTS_SECURITY_WEBHOOK_URL', 'AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_URL'];
  if (!services.some((s) => s.name === 'alerts') || urls.some((u) => env[u]?.trim())) return undefined;
  const base = `http://127.0.0.1:${LOCAL_SINK_PORT}`;
  env.AUDITLINE_ALERTS_SECURITY_WEBHOOK_URL = `${base}/security`;
  env.AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_URL = `${base}/compliance`;
  env.AUDITLINE_ALERTS_ALLOWED_TARGETS ??= '127.0.0.1/32';
  return {
    name: 'webhook-sink',
    metricsPort: LOCAL_SINK_PORT,
    args: [assetPath('infra', 'docker', 'webhook-sink.mjs')],
    readyPath: '/healthz',
    env: {
      WEBHOOK_SINK_HOST: '127.0.0.1',
      WEBHOOK_SINK_PORT: String(LOCAL_SINK_PORT),
      WEBHOOK_SINK_SECRET_SECURITY: env.AUDITLINE_ALERTS_SECURITY_WEBHOOK_SECRET,
      WEBHOOK_SINK_SECRET_COMPLIANCE: env.AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_SECRET,
    },
  };
}

/** What `pipeline` says after the demo about when archive objects appear; CONFIG_INVALID when AUDITLINE_ARCHIVER_ROLL_MS is invalid. */
export function archiveRollNote(env: NodeJS.ProcessEnv = process.env): string {
  const rollMs = loadArchiverRollMs(env);
  const every = rollMs < 1_000 ? `${rollMs} ms` : `${Math.round(rollMs / 1_000)} s`;
  return `Archive: objects roll every ${every} (AUDITLINE_ARCHIVER_ROLL_MS); then: npx auditline archive verify`;
}

export function renderStatus(statuses: readonly ServiceStatus[]): string {
  const rows = statuses.map((s) => [s.name, s.state, s.pid ? String(s.pid) : '-', String(s.restarts), s.name === 'webhook-sink' ? `${s.metricsUrl}/<channel>` : `${s.metricsUrl}/metrics`, s.log]);
  const header = ['SERVICE', 'STATE', 'PID', 'RESTARTS', 'URL', 'LOG'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows].map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

export async function pipelineCommand(options: PipelineOptions): Promise<number> {
  const consumers = await pipelineServices(options.services);
  const sink = localPipelineDefaults(consumers);
  const services = sink ? [sink, ...consumers] : consumers;
  // Checked before anything starts, like every setting.
  const archiveNote = consumers.some((c) => c.name === 'archiver') ? archiveRollNote() : undefined;
  let printTimer: NodeJS.Timeout | undefined;
  let lastPrinted = '';
  const supervisor = new Supervisor(services, {
    cli: cliEntry,
    logDir: options.logDir,
    env: process.env,
    // State changes come in bursts (every service starting at once): print the table once per burst.
    onChange: () => {
      clearTimeout(printTimer);
      printTimer = setTimeout(() => {
        const table = renderStatus(supervisor.status());
        if (table !== lastPrinted) say(`\n${table}`);
        lastPrinted = table;
      }, 300);
    },
  });
  let stopping: Promise<void> | undefined;
  const stop = (why: string) => {
    if (!stopping) {
      say(`\npipeline: ${why}: stopping every service (SIGTERM, graceful shutdown)`);
      stopping = supervisor.stop();
    }
    return stopping;
  };
  let signalled: (name: string) => void = () => undefined;
  const signal = new Promise<string>((resolve) => (signalled = resolve));
  const onSignal = (name: NodeJS.Signals) => signalled(name);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    say(`pipeline: starting ${services.map((s) => s.name).join(', ')} (each its own process; logs in ${options.logDir})`);
    supervisor.start();
    const ready = await Promise.race([supervisor.waitReady(options.readyTimeout * 1_000).then(() => 'ready'), signal]);
    if (ready !== 'ready') {
      await stop(`${ready} received`);
      return 0;
    }
    say(`\n${renderStatus(supervisor.status())}\n\npipeline: every service is ready. Ctrl-C stops them all.`);
    lastPrinted = renderStatus(supervisor.status());
    let demoCode = 0;
    if (options.demo > 0) {
      say('');
      demoCode = await demoCommand({ executions: options.demo, rate: options.demoRate, concurrency: 50, seed: randomSeed(), wait: 90 });
      if (sink) say(`\nAlerts delivered to the local webhook sink (signatures checked): tail -f ${path.join(options.logDir, 'webhook-sink.log')}`);
      if (archiveNote) say(archiveNote);
      if (!options.exitAfterDemo) say('\npipeline: still running; more traffic: npx auditline demo --executions 500 --rate 50   Ctrl-C stops every service.');
    }
    if (options.exitAfterDemo) {
      await stop('demo finished');
      return demoCode;
    }
    const name = await signal;
    await stop(`${name} received`);
    return 0;
  } catch (err) {
    await stop('start failed');
    throw err;
  } finally {
    clearTimeout(printTimer);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    say(`\n${renderStatus(supervisor.status())}`);
  }
}


export function registerPipeline(program: Command): void {
  program
    .command('pipeline')
    .description('run every consumer service as its own process, show their state, restart any that exits, stop them all on Ctrl-C')
    .option('--services <list>', `comma-separated subset (default: all of ${Object.keys(SERVICES).join(', ')})`)
    .option('--log-dir <dir>', 'where each service appends its log (<service>.log)', path.join(packageRoot, '.auditline', 'pipeline', 'logs'))
    .option('--ready-timeout <seconds>', 'give up when the services are not all ready by then', intOption('--ready-timeout', 5, 3_600), 180)
    .option('--demo <executions>', 'once ready, drive this many demo executions through the pipeline (0: none)', intOption('--demo', 0, 1_000_000), 0)
    .option('--demo-rate <r>', 'demo executions started per second', intOption('--demo-rate', 1, 100_000), 10)
    .option('--exit-after-demo', 'stop every service once the demo has run (for scripts)', false)
    .addHelpText(
      'after',
      '\n`npm start` runs this after starting the local stack (when no AUDITLINE_* endpoints are set) and `auditline setup`.\nEach service serves /metrics, /healthz and /readyz on its port (docs/metrics.md); a service that exits is restarted\nwith a backoff of 1 s doubling to 30 s (not one that exits 2, an invalid setting). Exit codes: 0 stopped cleanly, 1 a service never became ready or the demo failed, 2 wrong usage.',
    )
    .action(async (opts: PipelineOptions) => {
      process.exitCode = await pipelineCommand(opts);
    });
}
