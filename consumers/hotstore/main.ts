import { collectDefaultMetrics, Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { runService } from '../../core/service/index.js';
import { loadHotstoreConfig } from './config.js';
import { HotstoreService } from './service.js';

/**
 * Entry point of `auditline run hotstore`: validates the settings (a bad one
 * throws CONFIG_INVALID naming it), wires pino and prom-client, and runs the
 * service until SIGTERM/SIGINT. Resolves with the exit code.
 */
export async function runHotstore(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const config = loadHotstoreConfig(env);
  const logger = createLogger('auditline-hotstore', config.runtime.logLevel);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'auditline_hotstore_' });
  const service = new HotstoreService(config, { logger, registry });
  return runService({ settings: config.runtime, service, registry, logger });
}
