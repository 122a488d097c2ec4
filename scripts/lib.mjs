// Helpers shared by the npm scripts (plain ESM so they run before anything is compiled).
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync } from 'node:fs';
import os from 'node:os';
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

/**
 * `stack up --json`: starts the local services not running yet (all, or
 * `only` and their dependencies) and returns { stackDir, started }, the
 * services this call started; `ok` is false when up failed (what it started
 * is still listed, to be stopped).
 */
export function localStackUp({ env = process.env, only } = {}) {
  const r = spawnSync(process.execPath, [cli, 'stack', 'up', '--json', ...(only ? ['--only', only.join(',')] : [])], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (r.error) throw r.error;
  const line = r.stdout.trim().split('\n').pop();
  const parsed = line ? JSON.parse(line) : { stackDir: undefined, started: [] };
  return { ok: r.status === 0, stackDir: parsed.stackDir, started: parsed.started };
}

/** Stops exactly the services `localStackUp` started, in the stack directory it used; services already running before stay up. */
export function localStackDown(session, { env = process.env } = {}) {
  if (!session.stackDir || session.started.length === 0) return 0;
  return run(process.execPath, [cli, 'stack', 'down', '--only', session.started.join(',')], {
    env: { ...env, AUDITLINE_STACK_DIR: session.stackDir },
  });
}

/** Runs a command with inherited output, passing SIGINT and SIGTERM on to it (so the caller can clean up after); resolves to its exit code. */
export function runForwardingSignals(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: root, stdio: 'inherit', ...options });
    const forward = (signal) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1));
    });
  });
}
