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
  // A key that is not an identifier may be data itself (`{"ann@example.com": …}`, an address as a key): masked too.
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [PLAIN_KEY.test(k) ? k : maskString(k), maskValue(v)]));
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

const MASKED_WORDS = /^\S\*\*\*(?:\s+\S\*\*\*)*$/u;
/** A mask keeps an address's domain: one `@`, then labels and a dot (`a***@ann@x.com`, `x***@+4477…` are no masks). */
const MASKED_EMAIL = /^[^\s@]\*\*\*@(?:[\p{L}\p{N}-]+\.)+[\p{L}\p{N}-]{2,}$/u;
/** A key a mask may keep as it is: an identifier (`street`, `zip_code`); any other key is masked like a value. */
const PLAIN_KEY = /^[A-Za-z_$][A-Za-z0-9_$.-]{0,63}$/;
const MASKED_PHONE_OR_SCALAR = /^\*\*\*\d{0,2}$/;

/**
 * True when `value` has the shape {@link maskValue} gives (every string a
 * mask: `a***@example.com`, `***58`, `A*** S***`, `***`; objects and arrays
 * of such; null). The tokenizer leaves such values alone when the producer
 * says it masked them, and tokenizes everything else under a PII key, so a
 * field the producer did not know stays protected.
 */
export function isMaskShaped(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  if (typeof value === 'string') {
    const v = value.trim();
    return v === '' || MASKED_WORDS.test(v) || MASKED_EMAIL.test(v) || MASKED_PHONE_OR_SCALAR.test(v);
  }
  if (Array.isArray(value)) return value.every(isMaskShaped);
  if (typeof value === 'object') return Object.entries(value).every(([k, v]) => (PLAIN_KEY.test(k) || isMaskShaped(k)) && isMaskShaped(v));
  return false;
}
