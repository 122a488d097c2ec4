import type { Command } from 'commander';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints, type Endpoints } from '../../core/endpoints.js';
import { errorMessage } from '../../core/errors.js';
import { runDemo, type DemoSummary } from '../../demo/driver.js';
import type { DemoOutcome } from '../../demo/workflows.js';
import { createAuditProducer } from '../../producers/index.js';
import { intOption, positiveNumber } from '../options.js';

export interface DemoCommandOptions {
  executions: number;
  rate: number;
  seed: number;
  concurrency: number;
  /** Seconds to wait for the executions to be queryable in the hot store; 0 = do not wait. */
  wait: number;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

/**
 * Largest `--seed`: the demo's generator (mulberry32, demo/workflows.ts) takes its seed as an unsigned 32-bit
 * integer, so every seed 0 to 2^32 - 1 tells its own story and a larger one would repeat a smaller one's.
 */
export const SEED_MAX = 2 ** 32 - 1;

/** `--seed`: an integer 0 to SEED_MAX; UsageError otherwise. */
export const parseSeed = intOption('--seed', 0, SEED_MAX);

/** A seed for a demo run given none (`demo` without --seed, `pipeline --demo`); the run prints it, to repeat. */
export function randomSeed(): number {
  return Math.floor(Math.random() * (SEED_MAX + 1));
}



/** How many of `ids` the hot store has (executions rows, FINAL). */
async function storedCount(endpoints: Endpoints, ids: readonly string[]): Promise<number> {
  const clickhouse = createClickHouse(endpoints.clickhouse);
  try {
    const rs = await clickhouse.query({
      query: `SELECT count() AS n FROM ${endpoints.clickhouse.database}.executions FINAL WHERE execution_id IN {ids:Array(String)}`,
      query_params: { ids },
      format: 'JSONEachRow',
    });
    const [row] = await rs.json<{ n: number | string }>();
    return Number(row?.n ?? 0);
  } finally {
    await clickhouse.close();
  }
}

/** Waits until every execution is in the hot store (or the time is up); returns how many arrived. */
async function waitForHotStore(endpoints: Endpoints, ids: readonly string[], seconds: number): Promise<{ stored: number; ms: number; error?: string }> {
  const t0 = Date.now();
  let stored = 0;
  let error: string | undefined;
  let lastSaid = 0;
  while (Date.now() - t0 < seconds * 1_000) {
    try {
      stored = await storedCount(endpoints, ids);
      error = undefined;
    } catch (err) {
      error = errorMessage(err);
    }
    if (stored >= ids.length) break;
    if (Date.now() - lastSaid >= 5_000) {
      say(`demo: waiting for the pipeline: ${stored}/${ids.length} executions queryable in the hot store${error ? ` (${error})` : ''}`);
      lastSaid = Date.now();
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  return { stored, ms: Date.now() - t0, ...(error ? { error } : {}) };
}

/** Fired alerts of this run per rule, when the alert records exist. */
async function alertsSince(endpoints: Endpoints, since: Date): Promise<{ rule: string; severity: string; alerts: number }[] | string> {
  const clickhouse = createClickHouse(endpoints.clickhouse);
  try {
    const rs = await clickhouse.query({
      query: `SELECT rule, any(severity) AS severity, count() AS alerts FROM ${endpoints.clickhouse.database}.alerts_fired FINAL
              WHERE fired_at >= {since:DateTime64(3, 'UTC')} GROUP BY rule ORDER BY rule`,
      query_params: { since: since.getTime() / 1_000 },
      format: 'JSONEachRow',
    });
    return (await rs.json<{ rule: string; severity: string; alerts: number | string }>()).map((r) => ({ ...r, alerts: Number(r.alerts) }));
  } catch (err) {
    return errorMessage(err);
  } finally {
    await clickhouse.close();
  }
}

function tally(summary: DemoSummary): string {
  return Object.entries(summary.byWorkflow)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([wf, c]) => `  ${wf.padEnd(8)} success ${c.success}, failed ${c.failed}, partial ${c.partial}, never finished ${c.unfinished}`)
    .join('\n');
}

/** The executions worth looking at: a failed invoice sync with PII in its error, one with a decision path. */
function pointers(outcomes: readonly DemoOutcome[]): { failed?: DemoOutcome; decided?: DemoOutcome } {
  const failed = outcomes.find((o) => o.workflowId === 'WF-003' && o.status === 'failed' && o.piiInError) ?? outcomes.find((o) => o.status === 'failed');
  const decided = outcomes.find((o) => o.workflowId === 'WF-003' && o.status === 'success') ?? outcomes.find((o) => o.status !== 'unfinished');
  return { ...(failed ? { failed } : {}), ...(decided ? { decided } : {}) };
}

export async function demoCommand(options: DemoCommandOptions): Promise<number> {
  const endpoints = loadEndpoints();
  const startedAt = new Date();
  const audit = createAuditProducer({ brokers: endpoints.kafka.brokers, schemaRegistryUrl: endpoints.registry.url, service: 'auditline-demo' });
  say(`demo: ${options.executions} executions at ${options.rate}/s (seed ${options.seed}) through the producer client into audit.raw`);
  let summary: DemoSummary;
  try {
    summary = await runDemo(audit, {
      ...options,
      onProgress: (p) => say(`demo: ${p.done}/${p.total} executions done (${p.started} started, ${(p.elapsedMs / 1_000).toFixed(0)} s)`),
    });
  } finally {
    const flushed = await audit.close();
    if (flushed.spooledEvents > 0) say(`demo: ${flushed.spooledEvents} events are still in the local spool (Kafka unreachable); the next producer start replays them`);
  }
  say(`demo: done in ${(summary.elapsedMs / 1_000).toFixed(1)} s\n${tally(summary)}`);
  if (summary.errors > 0) {
    say(`demo: ${summary.errors} of ${options.executions} executions could not be recorded:`);
    for (const e of summary.errorMessages) say(`  ${e.count} x ${e.message}`);
  }

  const ids = summary.outcomes.map((o) => o.executionId);
  const { failed, decided } = pointers(summary.outcomes);
  let stored: Awaited<ReturnType<typeof waitForHotStore>> | undefined;
  if (options.wait > 0 && ids.length > 0) {
    stored = await waitForHotStore(endpoints, ids, options.wait);
    say(
      stored.stored >= ids.length
        ? `demo: all ${ids.length} executions queryable in the hot store after ${(stored.ms / 1_000).toFixed(1)} s`
        : `demo: only ${stored.stored}/${ids.length} executions in the hot store after ${options.wait} s: are the tokenizer and hot store services running? (npm start runs them)`,
    );
  }
  const alerts = await alertsSince(endpoints, startedAt);
  const lines = [
    '',
    'What to look at:',
    '  Failed invoice syncs of the last hour:',
    '    npx auditline query failed --workflow WF-003 --since 1h',
  ];
  if (failed) {
    lines.push(
      `  Inputs of a failed execution (${failed.workflowId}), PII as tokens:`,
      `    npx auditline query inputs ${failed.executionId}`,
      '  The same with cleartext, as an engineer (allowed for failed executions, recorded in the access log):',
      `    npx auditline reveal ${failed.executionId} --as $USER --role engineering --reason "demo: reproduce a failure"`,
    );
  }
  if (decided) lines.push(`  Decision path of ${decided.executionId} (${decided.workflowId}):`, `    npx auditline query decisions ${decided.executionId}`);
  lines.push('  Alerts fired since the demo started:');
  if (typeof alerts === 'string') lines.push(`    (alert records not readable: ${alerts})`);
  else if (alerts.length === 0) lines.push('    none yet (the alerts service evaluates absence rules on a timer; look again in a few minutes)');
  else lines.push(...alerts.map((a) => `    ${a.rule} (${a.severity}): ${a.alerts}`));
  console.log(lines.join('\n'));
  return summary.errors > 0 || (stored !== undefined && stored.stored < ids.length) ? 1 : 0;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('drive realistic workflow traffic through the producer client (invoice sync, refund approval, customer onboarding) and show what to look at')
    .option('--executions <n>', 'executions to record', intOption('--executions', 1, 1_000_000), 60)
    .option('--rate <r>', 'executions started per second', positiveNumber('--rate', 100_000), 10)
    .option('--concurrency <n>', 'executions running at once at most', intOption('--concurrency', 1, 10_000), 50)
    // No default value: help would show another random number on each run. A seed is drawn when the demo starts, and printed.
    .option('--seed <n>', `seed of the branches taken, 0-${SEED_MAX} (same seed, same story; default: random, printed at start)`, parseSeed)
    .option('--wait <seconds>', 'wait up to this long for the executions to be queryable in the hot store (0: do not wait)', intOption('--wait', 0, 3_600), 90)
    .addHelpText(
      'after',
      '\nPII in the inputs is synthetic (example.com addresses); some failures carry it in the error text, and a few\nonboarding executions never finish (absence alerts). Progress goes to stderr, the summary to stdout.\nExit codes: 0 recorded (and queryable, unless --wait 0), 1 some executions not recorded or not queryable in time, 2 wrong usage.',
    )
    .action(async (opts: Omit<DemoCommandOptions, 'seed'> & { seed?: number }) => {
      process.exitCode = await demoCommand({ ...opts, seed: opts.seed ?? randomSeed() });
    });
}
