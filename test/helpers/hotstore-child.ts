import { spawn, type ChildProcess } from 'node:child_process';
import { assetPath } from '../../core/paths.js';

/** `node dist/cli/main.js run hotstore` as a child process, its log lines collected. */
export interface HotstoreChild {
  process: ChildProcess;
  /** Parsed JSON log lines (pino) so far. */
  logs: Record<string, unknown>[];
  /** Everything written to stderr. */
  stderr: () => string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Resolves with the port of /metrics, /healthz, /readyz once the service logged it. */
  port: Promise<number>;
}

export function startHotstoreChild(env: Record<string, string>): HotstoreChild {
  return startServiceChild('hotstore', env);
}

/** `node dist/cli/main.js run <service>` as a child process (metrics on a free port of 127.0.0.1), its log lines collected. */
export function startServiceChild(service: string, env: Record<string, string>): HotstoreChild {
  const prefix = `AUDITLINE_${service.toUpperCase()}_`;
  const child = spawn(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'run', service], {
    env: { ...process.env, [`${prefix}METRICS_PORT`]: '0', [`${prefix}METRICS_HOST`]: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let resolvePort: (port: number) => void = () => undefined;
  const port = new Promise<number>((resolve) => (resolvePort = resolve));
  let pending = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines.filter(Boolean)) {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (typeof entry.port === 'number') resolvePort(entry.port);
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { process: child, logs, stderr: () => stderr, exited, port };
}

/** GET a path of the child's HTTP endpoints. */
export async function httpGet(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** Value of a counter sample in Prometheus text, e.g. `auditline_hotstore_records_total{outcome="processed"}`; 0 when absent. */
export function sample(metricsText: string, series: string): number {
  const line = metricsText.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
