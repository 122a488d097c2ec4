import { isMaskShaped } from '../../core/pii/mask.js';
import { detectPii } from '../../core/pii/detectors.js';
import { applyEdits, hasDuplicateKeys, isJsonText, skipBlanks, stringValue, walkJson, type JsonIndex, type TextEdit } from './json-text.js';

/**
 * The stored form of a tokenized PII value (docs/tokenizer.md, "Format").
 *
 * In JSON payloads the value is replaced in place by an object
 * `{"$pii": PiiToken}` (also in JSON held as a string in a JSON string); in
 * free text (and inside other JSON strings and keys) by
 * an inline marker `[[pii:<mask>|<base64url of the PiiToken JSON>]]`.
 */
export interface PiiToken {
  /** Format version. */
  v: 1;
  /** Deterministic token: HMAC-SHA256 (tokenization key) of the normalized value, base64url. */
  t: string;
  /** Masked display form (JSON objects only; inline markers carry it outside the token). */
  m?: unknown;
  /** The JSON key the value sat under (e.g. `customer_email`), or the detector (`email`, `phone`). */
  f: string;
  /** Id of the data subject key the value is encrypted under. */
  k: string;
  /** AES-256-GCM bundle (base64 iv||ciphertext||tag) of this field's values under key `k`; on the bundle's first value only. */
  c?: string;
  /** Position of this value in its bundle; absent means 0. */
  i?: number;
  /**
   * The bundle of a value at position 1 or later: the first BUNDLE_ID_CHARS
   * characters of the bundle's `c` (its random IV). Tells two bundles under
   * the same key apart in one field (tokenized text a workflow fed back in).
   * Absent in tokens written before it existed.
   */
  b?: string;
}

/** Length of a bundle id (`b`): 8 base64 characters, 48 random bits of the IV. */
export const BUNDLE_ID_CHARS = 8;

export const PII_KEY = '$pii';

/**
 * What a stored field holding a token contains: the `{"$pii": …}` object
 * (JSON text; `{\"$pii\": …}` in JSON held in a string, hence no closing
 * quote) or the start of an inline marker (free text).
 */
export const TOKEN_MARKS: readonly string[] = [`"${PII_KEY}`, '[[pii:'];

/** True when stored text holds a token mark (a cheap test: it may still have to be parsed). */
export function holdsTokenMark(text: string): boolean {
  return TOKEN_MARKS.some((m) => text.includes(m));
}
// The token of a field's first marker carries the ciphertext of the whole field's bundle (hundreds of values): up to the largest payload.
const MARKER = /\[\[pii:([^|\]\r\n]{0,200})\|([A-Za-z0-9_-]{8,16000000})\]\]/g;

/** The inline form of a token in text. */
export function inlineMarker(mask: string, token: PiiToken): string {
  const { m: _mask, ...rest } = token;
  return `[[pii:${mask.replace(/[|\]\r\n]/g, '*')}|${Buffer.from(JSON.stringify(rest), 'utf8').toString('base64url')}]]`;
}

/** A token object of this format, or undefined. */
export function asPiiToken(value: unknown): PiiToken | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const t = value as Partial<PiiToken>;
  return t.v === 1 && typeof t.t === 'string' && typeof t.k === 'string' && typeof t.f === 'string' ? (t as PiiToken) : undefined;
}

/** What the producer's hash mode writes under `$pii`. */
const PRODUCER_HASH = /^hmac-sha256:[0-9a-f]{64}$/;
/** A token: HMAC-SHA256 in base64url. */
const TOKEN_TEXT = /^[A-Za-z0-9_-]{43}$/;

/** The members a token has, and the shape of each (`m` is checked by isMaskShaped). */
const TOKEN_MEMBERS: Record<string, (v: unknown) => boolean> = {
  v: (v) => v === 1,
  t: (v) => typeof v === 'string' && TOKEN_TEXT.test(v),
  // The key the value sat under, as written (blanks, any script): nothing a detector would find in it.
  f: (v) => typeof v === 'string' && v.length > 0 && v.length <= 200 && detectPii(v).length === 0,
  k: (v) => typeof v === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(v),
  c: (v) => typeof v === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(v),
  b: (v) => typeof v === 'string' && /^[A-Za-z0-9+/]{8}$/.test(v),
  i: (v) => Number.isInteger(v) && (v as number) >= 0,
  m: isMaskShaped,
};

/**
 * A token object as the tokenizer writes it: only the members a token has,
 * each of its shape (a 43-character token, a key id, base64 ciphertext, a
 * mask-shaped `m`): an object that only resembles one (cleartext in an
 * extra member, in `f` or `k`) is no token.
 */
function isWrittenToken(value: unknown): boolean {
  const token = asPiiToken(value);
  if (token === undefined) return false;
  for (const [member, v] of Object.entries(token)) if (!TOKEN_MEMBERS[member]?.(v)) return false;
  return true;
}

/**
 * True when a JSON value is already protected and must be left as it is:
 * `{"$pii": "hmac-sha256:<hex>"}` as the producer's hash mode writes it, or
 * `{"$pii": <token>}` as the tokenizer writes it. Anything else under `$pii`
 * (cleartext a producer put there, by mistake or to get past the tokenizer)
 * is not protected: it is scanned and tokenized like any value.
 */
export function isProtectedValue(value: unknown): boolean {
  const inner = piiMember(value);
  return typeof inner === 'string' ? PRODUCER_HASH.test(inner) : inner !== undefined && isWrittenToken(inner);
}

/** What `{"$pii": …}` holds, when `value` is an object with that one member; else undefined. */
function piiMember(value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === PII_KEY ? (value as Record<string, unknown>)[PII_KEY] : undefined;
}

/** An inline marker the tokenizer wrote: a mask-shaped display form and a token that decodes. */
function isWrittenMarker(mask: string, b64: string): boolean {
  if (!isMaskShaped(mask)) return false;
  try {
    return isWrittenToken(JSON.parse(Buffer.from(b64, 'base64url').toString('utf8')));
  } catch {
    return false;
  }
}

/**
 * Splits text into plain parts and the inline markers the tokenizer wrote
 * (which are never scanned again). Text that only looks like a marker (its
 * display part is no mask, or its token does not decode) stays plain text
 * and is scanned.
 */
export function splitMarkers(text: string): { text: string; marker: boolean }[] {
  if (!text.includes('[[pii:')) return [{ text, marker: false }];
  const parts: { text: string; marker: boolean }[] = [];
  let at = 0;
  for (const m of text.matchAll(MARKER)) {
    if (!isWrittenMarker(m[1]!, m[2]!)) continue;
    if (m.index > at) parts.push({ text: text.slice(at, m.index), marker: false });
    parts.push({ text: m[0], marker: true });
    at = m.index + m[0].length;
  }
  if (at < text.length) parts.push({ text: text.slice(at), marker: false });
  return parts;
}

/** A token found in stored text, and what to put in its place. */
export type TokenVisitor = (token: PiiToken, inline: boolean) => { replace: unknown } | undefined;

/**
 * Visits every token of a stored field (JSON or free text) and, where the
 * visitor says so, replaces it: a JSON token object by any JSON value, an
 * inline marker by text. Returns the field's text (unchanged text when
 * nothing was replaced).
 */
export function rewriteTokens(text: string, visit: TokenVisitor): string {
  if (!isJsonText(text)) return rewriteText(text, visit);
  const edits: TextEdit[] = [];
  walkJson(text, {
    value(start, _key, index) {
      // Tokens as the tokenizer stored them, also those written before its checks were strict (an `f` with blanks).
      const found = protectedAt(text, start, index, isStoredToken, MAX_STORED_TOKEN_DEPTH);
      if (found === undefined) return undefined;
      const replaced = visit(asPiiToken(piiMember(found.value))!, false);
      if (replaced) edits.push({ start, end: found.end, render: () => JSON.stringify(replaced.replace) });
      return found.end;
    },
    string(start, end) {
      const inner = stringValue(text, start, end);
      // Inline markers, and a string that is JSON itself (a body quoted as a string) holding tokens.
      const out = rewriteTokens(inner, visit);
      if (out !== inner) edits.push({ start, end, render: () => JSON.stringify(out) });
    },
  });
  return applyEdits(text, edits);
}

/**
 * The deepest nesting a protected value may have (a token's mask keeps the
 * shape of the value it masks: an address object is 2-3 levels); a deeper
 * one is walked as JSON. Bounds the work on nested `{"$pii":…}` objects,
 * each of which would otherwise be parsed whole (quadratic).
 */
const MAX_PROTECTED_DEPTH = 32;
/** The same bound for readers of stored tokens: a PII value nested deeper than the scan's bound still has its token read. */
const MAX_STORED_TOKEN_DEPTH = 256;

/**
 * The protected value (`{"$pii": …}`) at `start` of valid JSON text, parsed,
 * and the index after it; undefined when the value there is not one.
 * `index` is walkJson's. `check` is isProtectedValue for input the tokenizer
 * scans; readers of stored tokens pass a looser test. A key written twice
 * in it is never protected (the parsed check sees only the last one).
 */
function protectedAt(text: string, start: number, index: JsonIndex, check: (value: unknown) => boolean, maxDepth: number): { end: number; value: unknown } | undefined {
  if (text[start] !== '{' || !text.startsWith(`"${PII_KEY}"`, skipBlanks(text, start + 1))) return undefined;
  if (index.depth(start) > maxDepth) return undefined;
  const end = index.end(start);
  const slice = text.slice(start, end);
  const value: unknown = JSON.parse(slice);
  return check(value) && !hasDuplicateKeys(slice) ? { end, value } : undefined;
}

/** Index after the protected value at `start` of valid JSON text the tokenizer scans (isProtectedValue); undefined when there is none. */
export function protectedEnd(text: string, start: number, index: JsonIndex): number | undefined {
  return protectedAt(text, start, index, isProtectedValue, MAX_PROTECTED_DEPTH)?.end;
}

/** A stored token object (`{"$pii": <token>}`) as readers take it: the token's required members, whatever else it holds. */
function isStoredToken(value: unknown): boolean {
  return asPiiToken(piiMember(value)) !== undefined;
}

function rewriteText(text: string, visit: TokenVisitor): string {
  if (!text.includes('[[pii:')) return text;
  return text.replace(MARKER, (whole, _mask: string, b64: string) => {
    let token: PiiToken | undefined;
    try {
      token = asPiiToken(JSON.parse(Buffer.from(b64, 'base64url').toString('utf8')));
    } catch {
      return whole;
    }
    const replaced = token ? visit(token, true) : undefined;
    return replaced ? String(replaced.replace) : whole;
  });
}
