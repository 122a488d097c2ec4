// `npm start`: the main job. Compiles, starts the local stack when no
// endpoints are configured, brings topics, schemas, migrations and the archive
// bucket to their expected state, and proves the pipeline's path with a smoke
// run. Later issues add the consumer services here.
import { build, cli, run, usesLocalStack } from './lib.mjs';

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
console.error(`
Auditline is set up. Next:
  npx auditline stack status     services, endpoints, pids and logs
  npx auditline stack down       stop the local services (data is kept in .auditline/stack)`);
