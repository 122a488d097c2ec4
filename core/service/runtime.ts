import type { Registry } from 'prom-client';
import { errorMessage, isAuditlineError } from '../errors.js';
import type { Logger } from '../logger.js';
import { startServiceHttpServer } from './http-server.js';
import { settingsPrefix, type ServiceRuntimeSettings } from './settings.js';
import type { ReadinessReport } from './types.js';

/** What the runtime needs from a service. */
export interface ManagedService {
  /** Connects and starts working; aborting `signal` (a stop request during start) ends a start that waits for a dependency. */
  start(signal: AbortSignal): Promise<void>;
  /** Stops taking work, finishes and commits the work in flight, releases connections. */
  stop(): Promise<void>;
  /** Dependency checks for /readyz. */
  readiness(): Promise<ReadinessReport>;
  /** Settles when the service failed on its own and cannot go on. */
  failed: Promise<Error>;
}

export interface RunServiceOptions {
  settings: ServiceRuntimeSettings;
  service: ManagedService;
  registry: Registry;
  logger: Logger;
  /** @default ['SIGTERM', 'SIGINT'] */
  signals?: NodeJS.Signals[];
  /** Told the result of every readiness probe, e.g. to set a gauge. */
  onReadiness?: (ready: boolean) => void;
}

/** Exit codes of `auditline run <service>` (docs/cli.md). */
export const SERVICE_EXIT = { ok: 0, failed: 1, config: 2 } as const;

/**
 * Runs a service as a process: opens /metrics, /healthz and /readyz, starts
 * the service, and on SIGTERM or SIGINT stops it gracefully (the service
 * finishes and commits its batch in flight, nothing else). A second signal,
 * or a stop slower than the shutdown timeout, gives up waiting.
 * Resolves with the process exit code; the caller exits with it.
 */
export async function runService(options: RunServiceOptions): Promise<number> {
  const { settings, service, logger } = options;
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let requestStop: (signal: string) => void = () => undefined;
  let force: () => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (requestStop = resolve));
  const forced = new Promise<'forced'>((resolve) => (force = () => resolve('forced')));
  let signalsSeen = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signalsSeen += 1;
    if (signalsSeen === 1) {
      logger.info({ signal }, 'shutdown requested: finishing the batch in flight');
      requestStop(signal);
    } else {
      logger.warn({ signal }, 'second signal: exiting without waiting for the batch in flight (it is redelivered)');
      force();
    }
  };
  signals.forEach((s) => process.on(s, onSignal));
  const startAbort = new AbortController();
  void stopRequested.then(() => startAbort.abort());

  const http = await startServiceHttpServer({
    host: settings.http.host,
    port: settings.http.port,
    registry: options.registry,
    portSetting: `${settingsPrefix(settings.service)}METRICS_PORT`,
    readiness: async () => {
      const report = await service.readiness();
      options.onReadiness?.(report.ready);
      return report;
    },
  }).catch((err: unknown) => {
    signals.forEach((s) => process.off(s, onSignal));
    throw err;
  });
  logger.info({ host: settings.http.host, port: http.port }, 'http endpoints listening (/metrics, /healthz, /readyz)');

  let code: number = SERVICE_EXIT.ok;
  try {
    await service.start(startAbort.signal);
    if (!startAbort.signal.aborted) {
      logger.info({ group: settings.groupId, topic: settings.sourceTopic }, 'service started');
      const outcome = await Promise.race([stopRequested.then(() => undefined), service.failed]);
      if (outcome instanceof Error) {
        logger.error({ err: errorMessage(outcome) }, 'service failed; stopping');
        code = SERVICE_EXIT.failed;
      }
    }
  } catch (err) {
    if (!startAbort.signal.aborted) {
      logger.error({ code: isAuditlineError(err) ? err.code : undefined, err: errorMessage(err) }, 'service start failed');
      code = SERVICE_EXIT.failed;
    }
  }

  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), settings.shutdownTimeoutMs)));
  const stopped = service.stop().then(
    () => 'stopped' as const,
    (err: unknown) => {
      logger.error({ err: errorMessage(err) }, 'error during shutdown');
      return 'error' as const;
    },
  );
  const result = await Promise.race([stopped, timedOut, forced]);
  clearTimeout(timer);
  if (result === 'timeout') logger.error({ timeoutMs: settings.shutdownTimeoutMs }, 'shutdown timed out; the batch in flight is left uncommitted');
  if (result !== 'stopped') code = SERVICE_EXIT.failed;
  await http.close();
  signals.forEach((s) => process.off(s, onSignal));
  logger.info({ exitCode: code }, 'service stopped');
  return code;
}
