import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { canonicalJson } from './canonical-json.js';

/**
 * What a producer in `hash` mode writes in place of a PII value:
 * `hmac-sha256:<hex>` keyed by its piiHashKey, over a string as it is and
 * over any other value as canonical JSON (docs/producer.md). The tokenizer
 * names a subject known only by such a value `hashed:<this>`, and erasure
 * derives it again from the address and the key.
 */
export function producerHash(hashKey: string, value: unknown): string {
  const text = typeof value === 'string' ? value : canonicalJson(value);
  return `hmac-sha256:${createHmac('sha256', hashKey).update(text, 'utf8').digest('hex')}`;
}

/**
 * The rule of a producer hash key (piiHashKey, AUDITLINE_PRODUCER_PII_HASH_KEY):
 * the producer's options and the loader `erase` and `legal-hold` use check it alike.
 */
export const producerHashKeySchema = z.string({ message: 'must be a string' }).min(16, 'must be at least 16 characters');
