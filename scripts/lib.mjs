// Helpers shared by the npm scripts (plain ESM so they run before anything is compiled).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const cli = path.join(root, 'dist', 'cli', 'main.js');

/**
 * Makes the compiled CLI executable: tsc writes dist/cli/main.js without the
 * execute bit, and `npx auditline` runs the package's bin file directly, so a
 * fresh clone failed with "auditline: Permission denied".
 */
export function markBin() {
  chmodSync(cli, 0o755);
}

/** Runs a command with inherited output; returns its exit code. */
export function run(command, args, options = {}) {
  const r = spawnSync(command, args, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

/** Compiles the TypeScript sources (dependencies must be installed: `npm install`). */
export function build() {
  if (!existsSync(path.join(root, 'node_modules', 'typescript'))) {
    console.error('auditline: dependencies are missing; run `npm install` first');
    process.exit(1);
  }
  const code = run(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', root]);
  if (code !== 0) process.exit(code);
  markBin();
}

/** True when no AUDITLINE_* endpoint is configured, i.e. the local stack is to be used. */
export function usesLocalStack() {
  return ['AUDITLINE_KAFKA_BROKERS', 'AUDITLINE_SCHEMA_REGISTRY_URL', 'AUDITLINE_CLICKHOUSE_URL', 'AUDITLINE_S3_ENDPOINT'].every(
    (name) => !process.env[name]?.trim(),
  );
}

/** True when every local service is up and healthy (`stack status` exits 0). */
export function stackHealthy() {
  return spawnSync(process.execPath, [cli, 'stack', 'status'], { cwd: root, stdio: 'ignore' }).status === 0;
}
