import { collectDefaultMetrics, Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { runService } from '../../core/service/index.js';
import { loadArchiverConfig } from './config.js';
import { ArchiverService } from './service.js';

/**
 * Entry point of `auditline run archiver`: validates the settings (a bad one
 * throws CONFIG_INVALID naming it), wires pino and prom-client, and runs the
 * service until SIGTERM/SIGINT. Resolves with the exit code.
 */
export async function runArchiver(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const config = loadArchiverConfig(env);
  const logger = createLogger('auditline-archiver', config.runtime.logLevel);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'auditline_archiver_' });
  const service = new ArchiverService(config, { logger, registry });
  return runService({ settings: config.runtime, service, registry, logger });
}
