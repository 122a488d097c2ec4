import { collectDefaultMetrics, Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { runService } from '../../core/service/index.js';
import { loadAlertsConfig } from './config.js';
import { AlertsService } from './service.js';

/**
 * Entry point of `auditline run alerts`: validates the settings, the
 * channels and the rules file (a bad one throws naming the setting, or the
 * rule and field), wires pino and prom-client, and runs the service until
 * SIGTERM/SIGINT. Resolves with the exit code.
 */
export async function runAlerts(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const config = loadAlertsConfig(env);
  const logger = createLogger('auditline-alerts', config.runtime.logLevel);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'auditline_alerts_' });
  const service = new AlertsService(config, { logger, registry });
  return runService({ settings: config.runtime, service, registry, logger });
}
