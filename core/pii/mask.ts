import { EMAIL_EXACT, isPhoneNumber, phoneDigits } from './detectors.js';

/**
 * Masked display forms, used by the tokenizer and by the producer's `mask` mode alike:
 * `ann@example.com` → `a***@example.com`, a phone number → `***58` (last
 * two digits), other text → first character of each word (`Ann Smith` →
 * `A*** S***`), other scalars → `***`; objects and arrays keep their shape.
 * A mask tells a person which value it was, never enough to rebuild it.
 */
export function maskValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string') return maskString(value);
  if (Array.isArray(value)) return value.map(maskValue);
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskValue(v)]));
  return '***';
}

/** The masked form of one string (see {@link maskValue}). */
export function maskString(value: string): string {
  const v = value.trim();
  if (EMAIL_EXACT.test(v)) return `${v.slice(0, 1)}***${v.slice(v.indexOf('@'))}`;
  if (isPhoneNumber(v)) return `***${phoneDigits(v).slice(-2)}`;
  if (v === '') return '';
  return v.replace(/\S+/g, (word) => `${Array.from(word)[0]}***`);
}
