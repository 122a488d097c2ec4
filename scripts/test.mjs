// `npm test`: compile, make sure the real services are reachable (starting the
// local stack when no endpoints are configured), run every unit and
// integration test with node's test runner, and stop the stack again if this
// script started it.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build, cli, root, run, stackHealthy, usesLocalStack } from './lib.mjs';

build();
let startedStack = false;
if (usesLocalStack() && !stackHealthy()) {
  console.error('npm test: starting the local stack (first run downloads the services)');
  if (run(process.execPath, [cli, 'stack', 'up']) !== 0) process.exit(1);
  startedStack = true;
}
const args = process.argv.slice(2);
const targets = args.length > 0 ? args : [path.join('dist', 'test', 'unit'), path.join('dist', 'test', 'integration')];
// Human-readable spec output on the terminal, TAP to a file for the closing tally.
const tap = path.join(mkdtempSync(path.join(os.tmpdir(), 'auditline-test-')), 'results.tap');
const code = run(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...targets],
  { cwd: root },
);
if (startedStack) run(process.execPath, [cli, 'stack', 'down']);
const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(readFileSync(tap, 'utf8'))?.[1] ?? 0);
console.log(`\n${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped`);
process.exit(code);
