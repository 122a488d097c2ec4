import { producerHash } from '../core/pii/producer-hash.js';
// The producer's mask mode writes the same display forms as the tokenizer.
import { maskString, maskValue } from '../core/pii/mask.js';
import type { PiiMode } from './options.js';

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
const MIN_KNOWN_LENGTH = 3;

/**
 * What the producer does with values of PII fields (keys named in
 * `piiFields`, case-insensitive, at any depth of a JSON payload):
 * - cleartext: leaves them (the tokenizer downstream protects them);
 * - hash: replaces each with `{"$pii":"hmac-sha256:<hex>"}`, keyed by
 *   piiHashKey (strings are hashed as they are, other values as canonical
 *   JSON), so equal values still match without being readable;
 * - mask: replaces each with a display form such as `a***@example.com`.
 * In hash and mask modes the values seen in an execution's payloads are
 * also removed from its free text (error messages, branch reasons), along
 * with anything that looks like an e-mail address.
 */
export class PiiPolicy {
  private readonly fields: ReadonlySet<string>;
  /** The lower-cased field names when all are printable ASCII that JSON writes unescaped (see mayHoldField). */
  private readonly plainFields: readonly string[] | undefined;

  constructor(
    fields: readonly string[],
    readonly mode: PiiMode,
    private readonly hashKey?: string,
  ) {
    this.fields = new Set(fields.map((f) => f.toLowerCase()));
    const lower = [...this.fields];
    this.plainFields = lower.every((f) => /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(f)) ? lower : undefined;
    if (mode === 'hash' && !hashKey) throw new Error('piiMode hash needs a key');
  }

  /** True when `key` names a PII field. */
  isPiiField(key: string): boolean {
    return this.fields.has(key.toLowerCase());
  }

  /**
   * False only when no key written in `jsonText` (JSON.stringify output) can
   * be a PII field; true means "maybe" (a name may also occur inside a
   * string). Sound because JSON.stringify writes a key's characters as they
   * are unless they are quotes, backslashes or control characters, and a key
   * lower-cases to a plain ASCII name only character by character (no
   * context-dependent mapping yields ASCII), so the lower-cased text then
   * contains the name. Always true for field names outside that alphabet.
   */
  mayHoldField(jsonText: string): boolean {
    if (!this.plainFields) return true;
    const lower = jsonText.toLowerCase();
    return this.plainFields.some((f) => lower.includes(f));
  }

  /** True when values leave the process transformed (hash or mask). */
  get protects(): boolean {
    return this.mode !== 'cleartext';
  }

  /**
   * The value to write in place of a PII field's value. Records the
   * strings it hides in `known` so that free text can be scrubbed of them.
   */
  protect(value: unknown, known: Set<string>): unknown {
    if (this.mode === 'cleartext') return value;
    // Nested members may still carry toJSON (dates); work on their JSON form.
    const plain: unknown = value !== null && typeof value === 'object' ? JSON.parse(JSON.stringify(value) ?? 'null') : value;
    collectStrings(plain, known);
    if (this.mode === 'hash') return { $pii: this.hash(plain) };
    return maskValue(plain);
  }

  /** Free text with known PII values and e-mail addresses replaced (hash and mask modes only). */
  scrubText(text: string, known: ReadonlySet<string>): string {
    if (this.mode === 'cleartext' || text === '') return text;
    let out = text;
    const values = [...known].filter((v) => v.length >= MIN_KNOWN_LENGTH).sort((a, b) => b.length - a.length);
    for (const value of values) {
      if (out.includes(value)) out = out.split(value).join(this.textReplacement(value));
    }
    return out.replace(EMAIL, (match) => this.textReplacement(match));
  }

  private textReplacement(value: string): string {
    return this.mode === 'hash' ? `[pii:${this.hash(value)}]` : maskString(value);
  }

  private hash(value: unknown): string {
    return producerHash(this.hashKey!, value);
  }
}

function collectStrings(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') into.add(value);
  else if (typeof value === 'number' && String(value).length >= 6) into.add(String(value));
  else if (Array.isArray(value)) value.forEach((v) => collectStrings(v, into));
  else if (value !== null && typeof value === 'object') Object.values(value).forEach((v) => collectStrings(v, into));
}
