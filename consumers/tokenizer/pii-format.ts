/**
 * The stored form of a tokenized PII value (docs/tokenizer.md, "Format").
 *
 * In JSON payloads the value is replaced in place by an object
 * `{"$pii": PiiToken}`; in free text (and inside JSON strings and keys) by
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
}

export const PII_KEY = '$pii';
const MARKER = /\[\[pii:([^|\]\r\n]{0,200})\|([A-Za-z0-9_-]{8,8192})\]\]/g;

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

/**
 * True when a JSON value is already protected and must be left as it is:
 * `{"$pii": …}` as the producer's hash mode writes it (a string) or as the
 * tokenizer writes it (a token object).
 */
export function isProtectedValue(value: unknown): boolean {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 1 && keys[0] === PII_KEY;
}

/** Splits text into plain parts and the inline markers already in it (which are never scanned again). */
export function splitMarkers(text: string): { text: string; marker: boolean }[] {
  if (!text.includes('[[pii:')) return [{ text, marker: false }];
  const parts: { text: string; marker: boolean }[] = [];
  let at = 0;
  for (const m of text.matchAll(MARKER)) {
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
  const trimmed = text.trimStart();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return rewriteText(text, visit);
    }
    let changed = false;
    const walk = (value: unknown): unknown => {
      if (typeof value === 'string') {
        const out = rewriteText(value, visit);
        if (out !== value) changed = true;
        return out;
      }
      if (value === null || typeof value !== 'object') return value;
      if (Array.isArray(value)) return value.map(walk);
      if (isProtectedValue(value)) {
        const token = asPiiToken((value as Record<string, unknown>)[PII_KEY]);
        const replaced = token ? visit(token, false) : undefined;
        if (replaced) {
          changed = true;
          return replaced.replace;
        }
        return value;
      }
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => {
          const key = rewriteText(k, visit);
          if (key !== k) changed = true;
          return [key, walk(v)];
        }),
      );
    };
    const out = walk(parsed);
    return changed ? JSON.stringify(out) : text;
  }
  return rewriteText(text, visit);
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
