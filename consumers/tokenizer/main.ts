import { collectDefaultMetrics, Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { runService } from '../../core/service/index.js';
import { loadTokenizerConfig } from './config.js';
import { TokenizerService } from './service.js';

/**
 * Entry point of `auditline run tokenizer`: validates the settings (a bad
 * one throws CONFIG_INVALID naming it, never a key), wires pino and
 * prom-client, and runs the service until SIGTERM/SIGINT. Resolves with
 * the exit code.
 */
export async function runTokenizer(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const config = loadTokenizerConfig(env);
  const logger = createLogger('auditline-tokenizer', config.runtime.logLevel, { piiFields: config.piiFields });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'auditline_tokenizer_' });
  const service = new TokenizerService(config, { logger, registry });
  return runService({ settings: config.runtime, service, registry, logger });
}
