/**
 * The logging interface the producer accepts from its caller; a pino logger
 * fits as is. The producer itself prints nothing: without a logger it is
 * silent. It logs ids, counts and setting names, never payload values.
 */
export interface ProducerLogger {
  debug(obj: Record<string, unknown>, msg?: string): void;
  info(obj: Record<string, unknown>, msg?: string): void;
  warn(obj: Record<string, unknown>, msg?: string): void;
  error(obj: Record<string, unknown>, msg?: string): void;
}

const noop = (): void => {};

/** The default: drops every line. */
export const silentLogger: ProducerLogger = { debug: noop, info: noop, warn: noop, error: noop };

/** True when `value` has the four log methods. */
export function isProducerLogger(value: unknown): value is ProducerLogger {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return ['debug', 'info', 'warn', 'error'].every((level) => typeof v[level] === 'function');
}
