import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino censors in every log line. Payload-bearing fields are listed
 * so that an accidental `log.info({ event })` cannot print personal data.
 */
export const REDACT_PATHS: string[] = [
  '*.customer_email',
  '*.customer_name',
  '*.phone_number',
  '*.billing_address',
  '*.input',
  '*.output',
  '*.input_data',
  '*.output_data',
  '*.payload',
  '*.password',
  '*.secretAccessKey',
  'event.*',
];

/**
 * The structured logger services wire in their main; libraries take one from the caller.
 * Lines are written to stdout synchronously: pino's default stream writes from libuv's thread pool, so the last
 * lines before a SIGKILL, a SIGSTOP or an abort could be lost, and those are the lines an operator needs. The
 * services log a few lines per batch at most, so the synchronous write costs nothing measurable.
 */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({ name, level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination({ fd: 1, sync: true }));
}
