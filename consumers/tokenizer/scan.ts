import type { KeyObject } from 'node:crypto';
import { piiAad, sealValues, type TokenKey } from './crypto.js';
import { detectPii, isPhoneAfterWord, isPhoneKey, PHONE_ONLY, type DetectionKind } from '../../core/pii/detectors.js';
import { memoizeShortKeys, ownCopy } from '../../core/pii/key-memo.js';
import { isMaskShaped, maskString, maskValue } from '../../core/pii/mask.js';
import { canonicalJson } from '../../core/pii/canonical-json.js';
import { comparableKeyName } from '../../core/pii/fields.js';
import { BUNDLE_ID_CHARS, inlineMarker, isProtectedValue, PII_KEY, protectedEnd, splitMarkers, type PiiToken } from './pii-format.js';
import { applyEdits, hasDuplicateKeys, isJsonText, stringValue, walkJson, type TextEdit } from './json-text.js';

/** What counts as PII in a field. */
export interface ScanOptions {
  /** JSON key names whose values are PII at any depth (compared as {@link piiKeyName} gives them). */
  piiFields: ReadonlySet<string>;
  /** Free-text detectors to run on text and on JSON strings and keys. */
  detectors: ReadonlySet<DetectionKind>;
  /**
   * True when the producer says it hashed or masked the values of PII keys
   * (header auditline-pii-mode): values that have the shape it writes (a
   * hash, a mask) are left; any other value of a PII key is still
   * tokenized (a field the producer's list lacks, free text it missed).
   */
  keyedValuesProtected: boolean;
}

/** One PII value found by a scan; sealing gives it its token. */
export class PiiSlot {
  token: PiiToken | undefined;
  mask: unknown;

  constructor(
    readonly value: unknown,
    /** JSON key or detector kind. */
    readonly field: string,
    /** True for a value inside text (rendered as an inline marker). */
    readonly inline: boolean,
    /** True when a PII key names the value (`field` is that key), false for a detector's find. */
    readonly keyed: boolean = !inline,
    /** True when the text ends inside the value (a truncated preview): it may be only the start of it. */
    readonly cut: boolean = false,
  ) {}

  /** Its stored JSON form once sealed (JSON.stringify calls this: the scanned tree is written as it is). */
  toJSON(): unknown {
    return { [PII_KEY]: { ...this.token!, m: this.mask } };
  }
}

/** Text with detected values cut out. */
class TextParts {
  constructor(readonly parts: readonly (string | PiiSlot)[]) {}

  render(): string {
    let out = '';
    for (const p of this.parts) out += typeof p === 'string' ? p : inlineMarker(String(p.mask), p.token!);
    return out;
  }

  toJSON(): string {
    return this.render();
  }
}

/** A field with PII in it: its slots, and how to write it once they are sealed. */
export interface FieldScan {
  slots: PiiSlot[];
  render(): string;
}

/**
 * Finds the PII of one pii-tagged field. Text that parses as JSON (an
 * object, an array, or a string literal holding text or JSON) is walked in
 * place: values of PII keys (any type, any depth, every occurrence of a
 * duplicated key) become one slot each, strings and keys are run through
 * the detectors, and a string that is itself JSON is walked the same way;
 * other text is free text for the detectors. Only the spans that hold PII
 * are rewritten, every other byte stays as written. Values already
 * protected (`{"$pii": …}`, inline markers) are left alone. Null when the
 * field holds no PII: it is then written back byte for byte.
 */
export function scanField(text: string, options: ScanOptions): FieldScan | null {
  const slots: PiiSlot[] = [];
  const render = scanInto(text, options, slots);
  return render === null ? null : { slots, render };
}

/** Scans `text` (JSON or free text) into `slots`; how to write it once they are sealed, or null when it holds no PII. */
function scanInto(text: string, options: ScanOptions, slots: PiiSlot[]): (() => string) | null {
  if (isJsonText(text)) {
    const edits: TextEdit[] = [];
    // Lists under a phone-like key ({"phones": [5551234567]}), innermost last: their bare items are numbers of that
    // key. Containers inside such a list are stacked too (an object's own lists name their own keys).
    const lists: { end: number; key: string | undefined }[] = [];
    walkJson(text, {
      value(start, key, index) {
        const c = text[start];
        const scalar = c !== '{' && c !== '[';
        const keyed = key !== undefined && isPiiKey(key, options.piiFields);
        while (lists.length > 0 && lists[lists.length - 1]!.end <= start) lists.pop();
        const listKey = key === undefined && lists.length > 0 ? lists[lists.length - 1]!.key : undefined;
        // A bare number under a phone-like key ({"mobile": 447700900123}, {"phone": "5551234567"}, or an item of its
        // list): a phone number, as the phone detector takes it after a phone word in text.
        const phoneKey = keyed || c === '{' || !options.detectors.has('phone') ? undefined : key === undefined ? listKey : isPhoneKey(key) ? key : undefined;
        if (!scalar && !keyed && (lists.length > 0 || (c === '[' && phoneKey !== undefined))) lists.push({ end: index.end(start), key: c === '[' ? phoneKey : undefined });
        const phone = scalar && phoneKey !== undefined;
        if (phone) key = phoneKey;
        if (keyed || phone) {
          const end = index.end(start);
          const value: unknown = JSON.parse(text.slice(start, end));
          if (phone && !((typeof value === 'string' || typeof value === 'number') && isPhoneAfterWord(String(value)))) return undefined;
          // The producer's hash mode writes {"$pii": …} (a protected value); its mask mode a mask: anything else is tokenized.
          // (A key written twice hides the first value from the parsed check: such a value is tokenized whole.)
          const leave = value === null || value === '' || isProtectedValue(value) || (options.keyedValuesProtected && isMaskShaped(value));
          if (leave && (scalar || !hasDuplicateKeys(text.slice(start, end)))) return end;
          const slot = new PiiSlot(value, key!, false);
          slots.push(slot);
          edits.push({ start, end, render: () => JSON.stringify(slot) });
          return end;
        }
        return protectedEnd(text, start, index);
      },
      string(start, end, isKey) {
        const inner = stringValue(text, start, end);
        // A key is free text; a string value may also be JSON (a body quoted as a string).
        const render = isKey ? scanTextInto(inner, options, slots) : scanInto(inner, options, slots);
        if (render) edits.push({ start, end, render: () => JSON.stringify(render()) });
      },
    });
    return edits.length === 0 ? null : () => applyEdits(text, edits);
  }
  return scanTextInto(text, options, slots);
}

/** {@link scanInto} for free text only. */
function scanTextInto(text: string, options: ScanOptions, slots: PiiSlot[]): (() => string) | null {
  const scanned = scanText(text, options, slots);
  return scanned === null ? null : () => scanned.render();
}

/**
 * Text that cannot hold a span: every detection needs an `@` (e-mail), two
 * digits in a row (phone shapes, and detectPii's own pre-check) or a `"`
 * (a PII key quoted in text). Most JSON keys and short strings fail this
 * test, and skip the span search and its allocations.
 */
const MAY_HOLD_PII = /[@"]|\d\d/;

function scanText(text: string, options: ScanOptions, slots: PiiSlot[]): TextParts | null {
  if (text.length === 0) return null;
  const keyed = mayNameField(text, options.piiFields);
  if (!keyed && !MAY_HOLD_PII.test(text)) return null;
  const parts: (string | PiiSlot)[] = [];
  let found = false;
  for (const part of splitMarkers(text)) {
    if (part.marker) {
      parts.push(part.text);
      continue;
    }
    let at = 0;
    for (const span of textSpans(part.text, options, keyed)) {
      if (span.start > at) parts.push(part.text.slice(at, span.start));
      const slot = new PiiSlot(part.text.slice(span.start, span.end), span.field, true, span.keyed, span.cut === true);
      slots.push(slot);
      parts.push(slot);
      at = span.end;
      found = true;
    }
    if (at < part.text.length) parts.push(part.text.slice(at));
  }
  return found ? new TextParts(parts) : null;
}

/** A key written between quotes (a JSON key, a subscript), dots allowed: group `name`. */
const quotedKey = (name: string) => String.raw`(?<${name}>[A-Za-z0-9_.$-]{1,100})`;
/** An unquoted key (an identifier, not glued to a word or a quote before it): group `name`. */
const bareKey = (name: string) => String.raw`(?<![A-Za-z0-9_$'"-])(?<${name}>[A-Za-z_$][A-Za-z0-9_$-]{0,99})`;
/** `["key"]` or `['key']`: group `name`. */
const subscriptKey = (name: string) => String.raw`\[\s*["']${quotedKey(name)}["']\s*\]`;
/** A comparison operator: `==`, `===`, `!=`, `!==` (and `=`). */
const COMPARED = String.raw`(?:!==?|={1,3})`;
/** What separates a key from its value in a mapping: `:` (JSON, YAML, Python), `=>` (Ruby and PHP hashes). */
const MAPS_TO = String.raw`(?::|=>)`;
/**
 * A key written before its value in text: `"key":` (JSON), `\"key\":`
 * (JSON quoted in a string, any number of backslashes), `'key':` (Python
 * repr), `key:` (util.inspect, YAML, prose), `"key" =>` and `:key =>` (Ruby,
 * PHP), `key=` (logfmt, query strings), `key == value`, `key != value` and `["key"] == value`
 * (a branch condition), and `key in (…)` / `key not in […]`, also with
 * the key quoted or subscripted (a list of values, each a value of the
 * key). Named groups: `json` a JSON key (its value must be JSON), `list`,
 * `listSubscript` and `listQuoted` a key before a list, the others a key
 * whose value may also be unquoted.
 */
const KEY_IN_TEXT = new RegExp(
  `(?:${[
    // The whole run of backslashes (JSON quoted in strings up to six levels deep), never a match tried inside a longer
    // run: that would make the search quadratic in the run's length.
    String.raw`(?<!\\)(?<escape>\\{1,63})"${quotedKey('escaped')}\k<escape>"\s*:`,
    String.raw`"${quotedKey('json')}"\s*${MAPS_TO}`,
    String.raw`'${quotedKey('repr')}'\s*${MAPS_TO}`,
    String.raw`${subscriptKey('subscript')}\s*${COMPARED}`,
    String.raw`${bareKey('bare')}\s*(?:=>|${COMPARED}|:)`,
    String.raw`(?:${bareKey('list')}|${subscriptKey('listSubscript')}|["']${quotedKey('listQuoted')}["'])\s+(?:[Nn][Oo][Tt]\s+)?[Ii][Nn]\s*(?=[(\[{])`,
  ]
    .map((form) => `(?:${form})`)
    .join('|')})\\s*`,
  'g',
);
/** A key before a list (`key in (`), for the cheap pre-check of text. */
const IN_LIST = /\s[Ii][Nn]\s*[(\[{]/;
/** What the producer's hash mode writes into free text in place of a value. */
const PRODUCER_HASH_IN_TEXT = /^\[pii:hmac-sha256:[0-9a-f]{64}\]$/;
/** Words that are no value (an unquoted key form followed by them). */
const NO_VALUE = /^(?:null|undefined|none|nil|true|false)$/i;

/** {@link comparableKeyName}, memoized for the short keys scanning meets again and again. */
export const piiKeyName = memoizeShortKeys(comparableKeyName);

const keyNames = new WeakMap<ReadonlySet<string>, Set<string>>();

/** The configured PII field names as {@link piiKeyName} gives them (computed once per set). */
function piiNames(fields: ReadonlySet<string>): Set<string> {
  let names = keyNames.get(fields);
  if (!names) keyNames.set(fields, (names = new Set([...fields].map(piiKeyName))));
  return names;
}

/** True when `key` names a PII field (whatever its case and separators). */
export function isPiiKey(key: string, fields: ReadonlySet<string>): boolean {
  return fields.size > 0 && piiNames(fields).has(piiKeyName(key));
}

/**
 * False when `text` cannot hold a PII key followed by its value: no `:`,
 * `=` or ` in (`, or no PII field name in it (whatever its case and
 * separators). Cheap enough for every string of a payload.
 */
function mayNameField(text: string, fields: ReadonlySet<string>): boolean {
  if (fields.size === 0 || !(text.includes(':') || text.includes('=') || IN_LIST.test(text))) return false;
  const names = piiNames(fields);
  // Squeezed as the names are, so a name written in any spelling is found inside the text.
  const squeezed = comparableKeyName(text);
  for (const f of names) if (squeezed.includes(f)) return true;
  return false;
}

/**
 * PII spans of plain text: values of PII keys written inside the text (a
 * truncated payload's preview, an error message quoting a request body or
 * an inspected object, a log line), then the detectors on what is left. A
 * quoted value's span is the text between the quotes, so its token equals
 * the token of the same value elsewhere; an object, array or number is
 * taken up to its end (or the end of the text, when it was cut); an
 * unquoted value after `key:` or `key=` up to the next `,` `;` `&` `}` `]`
 * `)` or line end. Values already protected (a producer hash, a token, and
 * in the producer's hash and mask modes a mask) are left.
 */
function textSpans(text: string, options: ScanOptions, keyed: boolean): TextSpan[] {
  const spans: TextSpan[] = [];
  if (keyed) {
    for (const m of text.matchAll(KEY_IN_TEXT)) {
      const { json, repr, subscript, bare, escaped, escape } = m.groups!;
      const list = m.groups!.list ?? m.groups!.listSubscript ?? m.groups!.listQuoted;
      const field = (json ?? escaped ?? repr ?? subscript ?? bare ?? list)!;
      if (!isPiiKey(field, options.piiFields)) continue;
      const start = m.index + m[0].length;
      if (spans.length > 0 && start < spans[spans.length - 1]!.end) continue;
      const values = list !== undefined ? listItemSpans(text, start) : [escape !== undefined && text.startsWith(`${escape}"`, start) ? escapedStringSpan(text, start, escape) : valueSpan(text, start)];
      for (const span of values) {
        if (!span || span.end <= span.start || isProtectedText(text.slice(span.start, span.end), options)) continue;
        spans.push({ ...span, field, keyed: true });
      }
    }
  }
  if (options.detectors.size > 0) {
    let at = 0;
    const gaps = [...spans.map((s) => [s.start, s.end] as const), [text.length, text.length] as const];
    for (const [gapEnd, next] of gaps) {
      for (const d of detectPii(text.slice(at, gapEnd), options.detectors)) spans.push({ start: at + d.start, end: at + d.end, field: d.kind, keyed: false });
      at = next;
    }
  }
  return spans.sort((a, b) => a.start - b.start);
}

/** A value in text that is already protected: the producer's hash, a `{"$pii": …}` object, or (producer hash/mask modes) a mask. */
function isProtectedText(value: string, options: ScanOptions): boolean {
  if (PRODUCER_HASH_IN_TEXT.test(value)) return true;
  if (value.startsWith('{')) {
    try {
      if (isProtectedValue(JSON.parse(value))) return true;
    } catch {
      // not JSON (cut off, or an inspected object): scanned as it is
    }
  }
  return options.keyedValuesProtected && isMaskShaped(value);
}

/** A value's span in text; `cut` when the text ends inside it (an unclosed quote or bracket). */
interface ValueSpan {
  start: number;
  end: number;
  cut?: boolean;
}

/** A span of text that becomes a slot. */
interface TextSpan extends ValueSpan {
  field: string;
  keyed: boolean;
}

/**
 * Span of the value after a key in text: a quoted string between its
 * quotes, an object or array to its end, an unquoted value up to the next
 * delimiter. A number goes on over blanks and separators while digits
 * follow (`555 123 4567`, `020 7946 0958`), and is an unquoted value when a
 * letter or `+` is glued to it (`221B Baker Street`, `12+Rue+de+Rivoli`):
 * not cut after its first digits; a phone number in a shape with brackets is
 * taken whole; an unquoted value the text ends with is marked cut.
 */
function valueSpan(text: string, start: number): ValueSpan | undefined {
  const c = text[start];
  const quoted = c === '"' || c === "'" || c === '{' || c === '[';
  let span = keyedValueSpan(text, start);
  // A phone number in a shape with brackets or blanks, `(555) 123-4567`, is taken whole, not up to its `)`.
  const phone = quoted || !PHONE_START.test(c ?? '') ? undefined : detectPii(text.slice(start, start + 40), PHONE_ONLY).find((d) => d.start === 0);
  if (phone && (!span || start + phone.end > span.end)) span = { start, end: start + phone.end };
  // An unquoted value the text ends with may be only the start of it (a preview cut after `"id": 1234`).
  return span && !quoted && span.end >= text.length ? { ...span, cut: true } : span;
}
/** How a phone number can begin. */
const PHONE_START = /[\d(+]/;

function keyedValueSpan(text: string, start: number): ValueSpan | undefined {
  const json = jsonValueSpan(text, start);
  if (!json) return bareValueSpan(text, start);
  const c = text[start];
  if (c === '"' || c === "'" || c === '{' || c === '[') return json;
  const rest = text.slice(json.end, json.end + 64);
  if (/^[A-Za-z_+]/.test(rest)) return bareValueSpan(text, start) ?? json;
  const more = /^(?:[ \t().\/-]*\d)+/.exec(rest);
  return more ? { start, end: json.end + more[0].length } : json;
}

/**
 * Span of a string quoted as `escape"…escape"` (JSON quoted in a string)
 * starting at `start`: between the quotes, or to the end when cut. A quote
 * with more backslashes before it is a quote inside the string (`\\\"The\\\"`
 * in `\"Ann \\\"The\\\" Smith\"`), not its end.
 */
function escapedStringSpan(text: string, start: number, escape: string): ValueSpan {
  const quote = `${escape}"`;
  let from = start + quote.length;
  for (;;) {
    const end = text.indexOf(quote, from);
    if (end < 0) return { start: start + quote.length, end: text.length, cut: true };
    if (text[end - 1] !== '\\') return { start: start + quote.length, end };
    from = end + quote.length;
  }
}

/** Span of an unquoted value (after `key:` or `key=`): up to the next delimiter, without trailing blanks; none for null, true, false. */
function bareValueSpan(text: string, start: number): { start: number; end: number } | undefined {
  const m = /^[^,;&}\])\n\r'"]+/.exec(text.slice(start, start + 512));
  if (!m) return undefined;
  const value = m[0].trimEnd();
  return value === '' || NO_VALUE.test(value) ? undefined : { start, end: start + value.length };
}

/**
 * Spans of the items of a list starting at `start` (`(`, `[` or `{`), up to
 * its closing bracket or the end of the text (cut), nested lists included:
 * a quoted item between its quotes, an unquoted one up to the next `,` or
 * bracket, without trailing blanks; null, true, false and the like are no
 * value.
 */
function listItemSpans(text: string, start: number): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  let depth = 0;
  let i = start;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '(' || c === '[' || c === '{') {
      depth++;
      i++;
    } else if (c === ')' || c === ']' || c === '}') {
      depth--;
      i++;
      if (depth === 0) break;
    } else if (c === '"' || c === "'") {
      const span = jsonValueSpan(text, i)!;
      spans.push(span);
      i = span.end + 1;
    } else if (c === ',' || /\s/.test(c)) {
      i++;
    } else {
      let end = i;
      while (end < text.length && !LIST_DELIMITERS.includes(text[end]!)) end++;
      const item = text.slice(i, end).trimEnd();
      if (item !== '' && !NO_VALUE.test(item)) spans.push({ start: i, end: i + item.length });
      i = end;
    }
  }
  return spans;
}
const LIST_DELIMITERS = ',()[]{}';

/** Span of the JSON value starting at `start` (inside the quotes for a string); undefined for null, true, false. */
function jsonValueSpan(text: string, start: number): ValueSpan | undefined {
  const c = text[start];
  if (c === '"' || c === "'") {
    let i = start + 1;
    while (i < text.length && text[i] !== c) i += text[i] === '\\' ? 2 : 1;
    return i >= text.length ? { start: start + 1, end: text.length, cut: true } : { start: start + 1, end: i };
  }
  if (c === '{' || c === '[') {
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i++) {
      const ch = text[i];
      if (inString) {
        if (ch === '\\') i++;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === '{' || ch === '[') depth++;
      else if ((ch === '}' || ch === ']') && --depth === 0) return { start, end: i + 1 };
    }
    return { start, end: text.length, cut: true };
  }
  const literal = /^-?[0-9][0-9.eE+-]*/.exec(text.slice(start, start + 64));
  return literal ? { start, end: start + literal[0].length } : undefined;
}

/** What sealing one field needs. */
export interface SealContext {
  tokenKey: TokenKey;
  keyId: string;
  key: KeyObject;
  executionId: string;
  /** Tokens and masks computed so far, shared across batches. */
  cache?: SealCache;
}

/**
 * Token and masked forms of values already seen (the same customer's e-mail
 * or address recurs in every event of an execution and across executions):
 * normalizing, detecting the kind, HMAC and masking run once per distinct
 * value. Strings are keyed by themselves, other JSON values (an address
 * object, a numeric phone number) by their canonical JSON. Bounded: each map
 * is cleared when it reaches `limit` entries. Holds cleartext PII in this
 * process's memory only, as the batch itself does.
 */
export class SealCache {
  private readonly values = new Map<string, { token: string; mask: string }>();
  private readonly json = new Map<string, { token: string; mask: unknown }>();

  constructor(private readonly limit = 50_000) {}

  /** Token and mask of a value under a PII key that is not a string (the mask keeps the value's shape). */
  getJson(value: unknown, tokenKey: TokenKey): { token: string; mask: unknown } {
    return this.remember(this.json, canonicalJson(value), () => ({ token: tokenKey.token(value), mask: maskValue(value) }));
  }

  /** A string's mask is the same inline and as a JSON value (maskValue of a string is maskString). */
  get(value: string, tokenKey: TokenKey): { token: string; mask: string } {
    return this.remember(this.values, value, () => ({ token: tokenKey.token(value), mask: maskString(value) }));
  }

  private remember<T>(map: Map<string, T>, key: string, make: () => T): T {
    let entry = map.get(key);
    if (entry === undefined) {
      entry = make();
      if (map.size >= this.limit) map.clear();
      // A copy: the value is a slice of its field's text, which the slice would keep in memory.
      map.set(ownCopy(key), entry);
    }
    return entry;
  }
}

/**
 * Gives every slot of one field its token, mask and position, and encrypts
 * all their values in one AES-GCM call (one bundle per field and subject
 * key); the first slot carries the ciphertext, the others its id (`b`).
 */
export function sealSlots(slots: readonly PiiSlot[], ctx: SealContext): void {
  if (slots.length === 0) return;
  const c = sealValues(ctx.key, slots.map((s) => s.value), piiAad(ctx.keyId, ctx.executionId));
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    let t: string;
    if (typeof slot.value === 'string' && ctx.cache) {
      const cached = ctx.cache.get(slot.value, ctx.tokenKey);
      t = cached.token;
      slot.mask = cached.mask;
    } else if (!slot.inline && ctx.cache) {
      const cached = ctx.cache.getJson(slot.value, ctx.tokenKey);
      t = cached.token;
      slot.mask = cached.mask;
    } else {
      t = ctx.tokenKey.token(slot.value);
      slot.mask = slot.inline ? maskString(String(slot.value)) : maskValue(slot.value);
    }
    const token: PiiToken = { v: 1, t, f: slot.field, k: ctx.keyId };
    if (i === 0) token.c = c;
    else token.b = c.slice(0, BUNDLE_ID_CHARS);
    if (slots.length > 1) token.i = i;
    slot.token = token;
  }
}
