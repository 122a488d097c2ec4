import { loadServiceRuntimeSettings, type ServiceRuntimeSettings } from '../core/service/index.js';
import { ALERTS_DEFAULTS } from '../consumers/alerts/index.js';
import { ARCHIVER_DEFAULTS } from '../consumers/archiver/index.js';
import { HOTSTORE_DEFAULTS } from '../consumers/hotstore/index.js';
import { TOKENIZER_DEFAULTS } from '../consumers/tokenizer/index.js';

/**
 * The shared settings (group, source topic, DLQ topic, ...) of each consumer service as the environment gives them,
 * without the rest of their configuration (keys, rules files): what commands that act on the services' Kafka names
 * (`acls`, `dlq redrive`) need.
 */
export function consumerRuntimes(env: NodeJS.ProcessEnv = process.env): Record<'tokenizer' | 'hotstore' | 'archiver' | 'alerts', ServiceRuntimeSettings> {
  return {
    tokenizer: loadServiceRuntimeSettings('tokenizer', TOKENIZER_DEFAULTS, env),
    hotstore: loadServiceRuntimeSettings('hotstore', HOTSTORE_DEFAULTS, env),
    archiver: loadServiceRuntimeSettings('archiver', ARCHIVER_DEFAULTS, env),
    alerts: loadServiceRuntimeSettings('alerts', ALERTS_DEFAULTS, env),
  };
}
