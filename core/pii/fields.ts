/**
 * The key names whose values are personal data when nothing else is configured: the producer's
 * AUDITLINE_PRODUCER_PII_FIELDS and the tokenizer's AUDITLINE_TOKENIZER_PII_FIELDS default to them, and the service
 * logger (core/logger.ts) always censors them.
 */
export const DEFAULT_PII_FIELDS: readonly string[] = ['customer_email', 'customer_name', 'phone_number', 'billing_address'];

/**
 * A key's name as PII field names are compared: lower-cased, without `_`, `-` and blanks, so `customer_email`,
 * `customerEmail`, `Customer-Email` and `CUSTOMER_EMAIL` are one name. The tokenizer finds PII keys by it, and the
 * service logger censors keys by it.
 */
export function comparableKeyName(key: string): string {
  return key.toLowerCase().replace(/[-_\s]/g, '');
}
