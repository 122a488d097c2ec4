#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerAcls } from './commands/acls.js';
import { registerAccessLog } from './commands/access-log.js';
import { registerAccessReview } from './commands/access-review.js';
import { registerArchive } from './commands/archive.js';
import { registerDemo } from './commands/demo.js';
import { registerDlq } from './commands/dlq.js';
import { registerErase } from './commands/erase.js';
import { registerKeys } from './commands/keys.js';
import { registerPipeline } from './commands/pipeline.js';
import { registerQuery } from './commands/query.js';
import { registerReport } from './commands/report.js';
import { registerReplay } from './commands/replay.js';
import { registerRetention } from './commands/retention.js';
import { registerReveal } from './commands/reveal.js';
import { registerRun } from './commands/run.js';
import { registerSetup } from './commands/setup.js';
import { registerStack } from './commands/stack.js';
import { SERVICES } from './commands/run.js';
import { EXIT, reportError } from './exit.js';
import { unknownSettings, unknownSettingWarning } from './known-settings.js';
import { createLogger } from '../core/logger.js';
import { readFileSync } from 'node:fs';
import { assetPath } from '../core/paths.js';
import { applyLocalSecrets } from '../infra/local-stack/secrets.js';

// The S3 SDK warns on every run that releases after January 2027 need Node 22;
// package.json pins a release that supports Node 20 (docs/compatibility.md).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { version } = JSON.parse(readFileSync(assetPath('package.json'), 'utf8')) as { version: string };

const program = new Command('auditline')
  .description('Auditline: event-streaming audit trail for workflow systems')
  .version(version)
  .showHelpAfterError()
  // Commander's own usage errors (a missing option or argument, an unknown option or command) exit 2 like the
  // commands' own (docs/cli.md) instead of commander's 1; subcommands inherit this from the program.
  .exitOverride()
  .addHelpText(
    'after',
    '\nEndpoints come from AUDITLINE_* environment variables (docs/configuration.md);\nwith none set, the local stack of `auditline stack up` is used.',
  );

// With the local stack, keys the services need are generated once and shared
// by every command (infra/local-stack/secrets.ts); never with real endpoints.
// The `stack` commands need none: `stack status` in particular only reads.
program.hook('preAction', (_program, action) => {
  warnUnknownSettings(action);
  if (action.parent?.name() === 'stack') return;
  applyLocalSecrets(process.env);
});

/**
 * A misspelt AUDITLINE_ variable would be ignored without a word: each one set
 * is named at start with the closest known setting (never its value). A
 * warning, not an error: a channels file of one's own may name variables of
 * its own, and launchers and tests set variables of theirs. `run` logs it as
 * the service logs (JSON on stdout), the other commands on stderr.
 */
function warnUnknownSettings(action: Command): void {
  const unknown = unknownSettings(process.env);
  if (unknown.length === 0) return;
  const service = action.name() === 'run' ? action.args[0] : undefined;
  const logger = service !== undefined && service in SERVICES ? createLogger(`auditline-${service}`) : undefined;
  for (const u of unknown) {
    if (logger) logger.warn({ setting: u.name, closest: u.closest }, unknownSettingWarning(u));
    else process.stderr.write(`auditline: warning: ${unknownSettingWarning(u)}\n`);
  }
}

registerStack(program);
registerSetup(program);
registerAcls(program);
registerRun(program);
registerPipeline(program);
registerQuery(program);
registerReveal(program);
registerErase(program);
registerDemo(program);
registerReport(program);
registerAccessReview(program);
registerAccessLog(program);
registerRetention(program);
registerKeys(program);
registerArchive(program);
registerReplay(program);
registerDlq(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  // Commander printed its message (and the help) already; --help and --version end with 0.
  if (err instanceof CommanderError) process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  else process.exitCode = reportError(err);
});
