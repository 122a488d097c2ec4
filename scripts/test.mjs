// `npm test`: compile, make sure the real services are reachable (starting the
// local services that are not running when no endpoints are configured), run
// every unit and integration test with node's test runner, then stop exactly
// the services this script started: ones that ran before stay up.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build, localStackDown, localStackUp, root, runForwardingSignals, usesLocalStack } from './lib.mjs';

build();
let session = { stackDir: undefined, started: [] };
if (usesLocalStack()) {
  // Idempotent: starts only what does not run (the first run downloads the services).
  session = localStackUp();
  if (!session.ok) {
    localStackDown(session);
    process.exit(1);
  }
  if (session.started.length > 0) console.error(`npm test: started ${session.started.join(', ')}; stops them at the end`);
}
const args = process.argv.slice(2);
const targets = args.length > 0 ? args : [path.join('dist', 'test', 'unit'), path.join('dist', 'test', 'integration')];
// Human-readable spec output on the terminal, TAP to a file for the closing tally.
const tap = path.join(mkdtempSync(path.join(os.tmpdir(), 'auditline-test-')), 'results.tap');
let code;
try {
  code = await runForwardingSignals(
    process.execPath,
    // The preload makes a socket opened by a file of dist/test/unit/ fail its test (README: unit tests open no sockets).
    ['--test', '--import', pathToFileURL(path.join(root, 'dist', 'test', 'helpers', 'no-sockets.js')).href, '--test-reporter=spec', '--test-reporter-destination=stdout', '--test-reporter=tap', `--test-reporter-destination=${tap}`, ...targets],
    { cwd: root },
  );
} finally {
  localStackDown(session);
}
const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(readFileSync(tap, 'utf8'))?.[1] ?? 0);
console.log(`\n${count('pass')} passed, ${count('fail') + count('cancelled')} failed, ${count('skipped')} skipped`);
process.exit(code);
