import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { AuditlineError, errorMessage } from '../errors.js';
import type { ReadinessReport } from './types.js';

export interface ServiceHttpOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  registry: Registry;
  /** Answers /readyz; must not throw (a thrown error counts as not ready). */
  readiness: () => Promise<ReadinessReport>;
  /** Name of the port setting, for the error when the port is taken. */
  portSetting: string;
}

export interface ServiceHttpServer {
  /** The bound port (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

/**
 * The operational endpoints of a service: `/metrics` (Prometheus text from
 * the service's registry), `/healthz` (the process and its event loop are
 * alive) and `/readyz` (200 when every dependency check passes, else 503,
 * with the checks as JSON; details name dependencies, never secrets).
 */
export async function startServiceHttpServer(options: ServiceHttpOptions): Promise<ServiceHttpServer> {
  const server = http.createServer((req, res) => {
    void route(req.method ?? 'GET', (req.url ?? '/').split('?')[0]!, options).then(
      ({ status, type, body }) => {
        res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
        res.end(body);
      },
      (err: unknown) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end(`internal error: ${errorMessage(err)}\n`);
      },
    );
  });
  // Probes and scrapes are short; a stuck client must not hold shutdown.
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new AuditlineError(
          'SERVICE_START_FAILED',
          err.code === 'EADDRINUSE'
            ? `port ${options.port} on ${options.host} is in use; choose another with ${options.portSetting}`
            : `cannot listen on ${options.host}:${options.port} (${options.portSetting}): ${err.message}`,
          { cause: err, details: { setting: options.portSetting } },
        ),
      );
    });
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function route(method: string, path: string, options: ServiceHttpOptions): Promise<{ status: number; type: string; body: string }> {
  if (method !== 'GET' && method !== 'HEAD') return { status: 405, type: 'text/plain', body: 'method not allowed\n' };
  switch (path) {
    case '/metrics':
      return { status: 200, type: options.registry.contentType, body: await options.registry.metrics() };
    case '/healthz':
      return { status: 200, type: 'application/json', body: '{"status":"ok"}\n' };
    case '/readyz': {
      let report: ReadinessReport;
      try {
        report = await options.readiness();
      } catch (err) {
        report = { ready: false, checks: { readiness: { ok: false, detail: errorMessage(err) } } };
      }
      return { status: report.ready ? 200 : 503, type: 'application/json', body: `${JSON.stringify(report)}\n` };
    }
    default:
      return { status: 404, type: 'text/plain', body: 'not found: /metrics, /healthz, /readyz\n' };
  }
}
