// `npm run bench -- <name>`: compiles, makes sure the real services run
// (starting the local stack when no endpoints are configured), and runs
// bench/<name>.ts. Each benchmark measures its own baseline in the same run
// and prints one JSON object as its last line.
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { build, cli, root, run, stackHealthy, usesLocalStack } from './lib.mjs';

const name = process.argv[2];
const available = readdirSync(path.join(root, 'bench'))
  .filter((f) => f.endsWith('.ts') && f !== 'stats.ts')
  .map((f) => f.replace(/\.ts$/, ''));
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- <name>\navailable: ${available.join(', ')}`);
  process.exit(2);
}
build();
if (usesLocalStack() && !stackHealthy()) {
  console.error('bench: starting the local stack');
  if (run(process.execPath, [cli, 'stack', 'up']) !== 0) process.exit(1);
}
const file = path.join(root, 'dist', 'bench', `${name}.js`);
if (!existsSync(file)) throw new Error(`${file} was not built`);
process.exit(run(process.execPath, [file, ...process.argv.slice(3)]));
