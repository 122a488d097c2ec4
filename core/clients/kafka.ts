import kafkajs, { type IHeaders, type KafkaConfig, type LogEntry } from 'kafkajs';

// kafkajs is CommonJS: its runtime values come through the default export under ESM.
const { Kafka, logLevel } = kafkajs;
import type { Endpoints } from '../endpoints.js';
import type { Logger } from '../logger.js';

/**
 * A kafkajs client from validated endpoint settings. kafkajs' own log lines
 * go to the given pino logger (warnings and errors only) or nowhere.
 */
export function createKafka(config: Endpoints['kafka'], logger?: Logger, overrides: Partial<KafkaConfig> = {}): InstanceType<typeof Kafka> {
  return new Kafka({
    clientId: config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    ...(config.sasl ? { sasl: config.sasl as KafkaConfig['sasl'] } : {}),
    // At the service's `trace` level kafkajs' own debug lines (joins, fetches, commits) come through too.
    logLevel: logger ? (logger.isLevelEnabled('trace') ? logLevel.DEBUG : logLevel.WARN) : logLevel.NOTHING,
    logCreator: () => (entry: LogEntry) => {
      if (!logger) return;
      const { message, ...rest } = entry.log;
      const fields = { kafkajs: entry.namespace, ...rest };
      if (entry.level <= logLevel.ERROR) logger.error(fields, message);
      else if (entry.level === logLevel.WARN) logger.warn(fields, message);
      else logger.trace(fields, message);
    },
    ...overrides,
  });
}

/** A record header's value as UTF-8 text (the first one of a repeated header); undefined when absent. */
export function headerText(value: IHeaders[string]): string | undefined {
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
}

/** How deep the causes of a kafkajs error are followed (kafkajs wraps at most twice: retries exceeded, then the protocol error). */
const CAUSE_DEPTH = 5;

/** A kafkajs error and its causes (`cause`), outermost first. */
export function* kafkaErrorChain(err: unknown): Generator<{ type?: unknown; code?: unknown }> {
  for (let e: unknown = err, depth = 0; e && depth < CAUSE_DEPTH; e = (e as { cause?: unknown }).cause, depth++) yield e as { type?: unknown; code?: unknown };
}

/** The Kafka protocol error type behind a kafkajs error (e.g. TOPIC_AUTHORIZATION_FAILED), following its causes. */
export function kafkaErrorType(err: unknown): string | undefined {
  for (const e of kafkaErrorChain(err)) if (typeof e.type === 'string') return e.type;
  return undefined;
}

const FENCED_TYPES = new Set(['INVALID_PRODUCER_EPOCH', 'PRODUCER_FENCED', 'INVALID_PRODUCER_ID_MAPPING']);
const FENCED_CODES = new Set([47, 49, 90]);

/** True when a kafkajs error (or one of its causes) says a newer producer with the same transactional id took over. */
export function isFencedError(err: unknown): boolean {
  for (const { type, code } of kafkaErrorChain(err)) {
    if ((typeof type === 'string' && FENCED_TYPES.has(type)) || (typeof code === 'number' && FENCED_CODES.has(code))) return true;
  }
  return false;
}
