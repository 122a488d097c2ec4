// `npm start`: the main job. Compiles, starts the local stack when no
// endpoints are configured, brings topics, schemas, migrations and the archive
// bucket to their expected state, then runs the whole pipeline in the
// foreground (`auditline pipeline`: every consumer service as its own
// process) with a short demo once it is ready, until Ctrl-C.
// Arguments go to `auditline pipeline`, e.g. `npm start -- --demo 0` or
// `npm start -- --exit-after-demo` (docs/cli.md).
import { spawn } from 'node:child_process';
import { build, cli, root, run, usesLocalStack } from './lib.mjs';

const step = (title, args) => {
  console.error(`\n== ${title}`);
  const code = run(process.execPath, [cli, ...args]);
  if (code !== 0) {
    console.error(`npm start: "${title}" failed (exit ${code})`);
    process.exit(code);
  }
};

build();
if (usesLocalStack()) step('local stack (no AUDITLINE_* endpoints configured)', ['stack', 'up']);
else console.error('npm start: using the configured AUDITLINE_* endpoints');
step('setup: topics, schemas, ClickHouse migrations, archive bucket', ['setup']);
step('smoke run: publish and read back one execution', ['smoke']);

console.error('\n== pipeline: every consumer service, then a short demo (Ctrl-C stops everything)');
const args = process.argv.slice(2);
// The 30-execution demo unless --demo N is given (--demo-rate and the like keep it).
const demoGiven = args.some((a) => a === '--demo' || a.startsWith('--demo='));
const pipeline = spawn(process.execPath, [cli, 'pipeline', ...(demoGiven ? [] : ['--demo', '30']), ...args], {
  cwd: root,
  stdio: 'inherit',
});
// Ctrl-C reaches both processes; the pipeline stops its services and exits, this script waits for it.
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => pipeline.kill(signal));
pipeline.on('exit', (code, signal) => {
  if (usesLocalStack()) {
    console.error(`
The local services keep running:
  npx auditline stack status     services, endpoints, pids and logs
  npx auditline stack down       stop them (data is kept in .auditline/stack)`);
  }
  process.exit(code ?? (signal ? 1 : 0));
});
