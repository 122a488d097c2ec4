import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { assetPath } from '../../core/paths.js';
import { portInUse } from '../../infra/local-stack/processes.js';
import { freePort } from './ports.js';
import { tempDir } from './temp-dir.js';

const run = promisify(execFile);
const cli = assetPath('dist', 'cli', 'main.js');

/** A ClickHouse server of its own, started by `auditline stack up --only clickhouse` in a private stack directory. */
export interface PrivateClickHouse {
  url: string;
  port: number;
  stackDir: string;
  database: string;
  /** The environment that names this stack (for further `auditline stack` calls). */
  env: Record<string, string>;
  /** A client for one of the server's users. */
  client(username: string, password?: string): ClickHouseClient;
  /** `auditline stack down` for this stack; the output of the command. */
  stop(): Promise<string>;
}

/**
 * Starts a private local ClickHouse on a port the OS found free (never the
 * shared server), with the given extra settings. Another process may take
 * the port between the check and the start: then it is tried again on
 * another one, three times in all.
 */
export async function startPrivateClickHouse(extraEnv: Record<string, string> = {}): Promise<PrivateClickHouse> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    try {
      return await startOn(port, extraEnv);
    } catch (err) {
      if (attempt >= 3 || !(await portInUse(port))) throw err;
    }
  }
}

async function startOn(port: number, extraEnv: Record<string, string>): Promise<PrivateClickHouse> {
  const database = extraEnv.AUDITLINE_CLICKHOUSE_DATABASE ?? 'audit';
  const env = { AUDITLINE_STACK_DIR: tempDir('auditline-private-ch'), AUDITLINE_STACK_CLICKHOUSE_PORT: String(port), AUDITLINE_CLICKHOUSE_DATABASE: database, ...extraEnv };
  const stack = (...args: string[]) => run(process.execPath, [cli, 'stack', ...args], { env: { ...process.env, ...env }, timeout: 240_000 });
  const url = `http://127.0.0.1:${port}`;
  const clients: ClickHouseClient[] = [];
  const handle: PrivateClickHouse = {
    url,
    port,
    stackDir: env.AUDITLINE_STACK_DIR,
    database,
    env,
    client(username, password = '') {
      const c = createClickHouse({ url, username, password, database });
      clients.push(c);
      return c;
    },
    async stop() {
      await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
      const { stderr } = await stack('down');
      return stderr;
    },
  };
  try {
    await stack('up', '--only', 'clickhouse');
  } catch (err) {
    await stack('down').catch(() => undefined);
    const e = err as { stderr?: string };
    throw new Error(`private ClickHouse on port ${port} did not start: ${e.stderr ?? String(err)}`);
  }
  return handle;
}
