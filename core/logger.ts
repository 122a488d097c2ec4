import { pino, type Logger } from 'pino';
import { comparableKeyName, DEFAULT_PII_FIELDS } from './pii/fields.js';

export type { Logger } from 'pino';

/** What a censored value is written as. */
export const REDACTED = '[redacted]';

/**
 * Key names whose values a log line never shows, at any depth of the logged object (up to
 * {@link REDACT_MAX_DEPTH}) and in any spelling of case and separators (`customer_email`, `customerEmail` and
 * `Customer-Email` are one name, as the tokenizer compares PII keys). Three groups:
 * - personal data: the default PII fields, `email` (erase's subject selector), and the event fields the schema tags
 *   pii that are not named `error` (`branch_reason`, `condition_values`);
 * - payloads: an event (`event`, `payload`), its pii-tagged payload fields (`input`, `output`, `input_data`,
 *   `output_data`) and a Kafka message's `value`;
 * - secrets, as the configuration objects name them: passwords and tokens, the S3 credentials, the tokenizer's keys,
 *   the archiver's signing key, the alert channels' `secret`, the producer's PII hash key, and the objects that hold
 *   some (`credentials`, `sasl`).
 * `error` and `message` are not on the list: log lines carry `error: errorMessage(err)` and operators need it.
 */
export const REDACTED_KEYS: readonly string[] = [
  ...DEFAULT_PII_FIELDS,
  'email',
  'branch_reason',
  'condition_values',
  'event',
  'payload',
  'input',
  'output',
  'input_data',
  'output_data',
  'value',
  'password',
  'secret',
  'token',
  'credentials',
  'sasl',
  'secret_access_key',
  's3_secret_access_key',
  'master_key',
  'previous_master_keys',
  'token_key',
  'signing_key',
  'pii_hash_key',
  'hash_key',
  'producer_hash_key',
];

/** Objects nested deeper than this are written as {@link REDACTED} whole: the walk below must end, and a key that deep was never looked at. */
export const REDACT_MAX_DEPTH = 8;


/**
 * A function that returns `obj` with the values under the given key names (and {@link REDACTED_KEYS}) replaced by
 * {@link REDACTED}. The logged object is never changed: only the objects on the way to a censored key are copied,
 * everything else is shared. Plain objects and arrays are walked; other objects (Errors, Buffers, Dates) are left to
 * pino's serializers as they are.
 */
export function sensitiveKeyCensor(extraKeys: readonly string[] = []): (obj: Record<string, unknown>) => Record<string, unknown> {
  const names = new Set([...REDACTED_KEYS, ...extraKeys].map(comparableKeyName));
  const walk = (value: unknown, depth: number): unknown => {
    if (value === null || typeof value !== 'object') return value;
    const isArray = Array.isArray(value);
    if (!isArray) {
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return value;
    }
    if (depth > REDACT_MAX_DEPTH) return REDACTED;
    if (isArray) {
      const list = value as unknown[];
      let copy: unknown[] | undefined;
      for (let i = 0; i < list.length; i++) {
        const next = walk(list[i], depth + 1);
        if (next !== list[i]) (copy ??= list.slice())[i] = next;
      }
      return copy ?? value;
    }
    const record = value as Record<string, unknown>;
    let copy: Record<string, unknown> | undefined;
    for (const key of Object.keys(record)) {
      const before = record[key];
      const next = before !== undefined && names.has(comparableKeyName(key)) ? REDACTED : walk(before, depth + 1);
      if (next !== before) (copy ??= { ...record })[key] = next;
    }
    return copy ?? value;
  };
  return (obj) => walk(obj, 0) as Record<string, unknown>;
}

/**
 * The structured logger services wire in their main; libraries take one from the caller.
 * Every logged object and every child logger's bindings pass {@link sensitiveKeyCensor}, so that an accidental
 * `log.info({ event })`, `log.info({ input })` or `log.info({ config })` prints no personal data and no secret.
 * `piiFields` adds the service's configured PII field names (the tokenizer passes AUDITLINE_TOKENIZER_PII_FIELDS).
 * This is a walk rather than pino's `redact` paths: these keys at depths 0 to 2 in snake and camel case take 135
 * leading-wildcard paths, which pino's redaction docs warn are costly (measured on a line of seven fields: 140-200 µs
 * a line with those paths, 3-6 µs with the walk, as without any redaction), and paths cover neither deeper keys nor
 * other spellings.
 * Lines are written to stdout synchronously: pino's default stream writes from libuv's thread pool, so the last
 * lines before a SIGKILL, a SIGSTOP or an abort could be lost, and those are the lines an operator needs. The
 * services log a few lines per batch at most, so the synchronous write costs nothing measurable.
 */
export function createLogger(name: string, level = 'info', options: { piiFields?: readonly string[]; destination?: pino.DestinationStream } = {}): Logger {
  const censor = sensitiveKeyCensor(options.piiFields);
  const logger = pino({ name, level, formatters: { log: censor } }, options.destination ?? pino.destination({ fd: 1, sync: true }));
  // pino's bindings formatter reaches the root's bindings only; a child's pass the censor here (a child's own children
  // inherit this method, each child being an Object.create of its parent).
  const child = logger.child;
  logger.child = function (this: Logger, bindings, childOptions) {
    return child.call(this, censor(bindings), childOptions);
  } as Logger['child'];
  return logger;
}
