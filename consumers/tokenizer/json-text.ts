/**
 * Positions in JSON text that is known to be valid (JSON.parse accepted
 * it): where a string, a value or a run of blanks ends. The tokenizer
 * rewrites a JSON field in place with these, so every byte it does not
 * replace stays as the producer wrote it (duplicate keys, number
 * spellings, integers beyond 2^53, blanks).
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Index after the blanks from `i`. */
export function skipBlanks(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

/** Index after the string literal whose opening quote is at `i`. */
export function stringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    if (q < 0) return text.length;
    let slashes = 0;
    while (text.charCodeAt(q - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return q + 1;
    from = q + 1;
  }
}

/** The text of the string literal at [start, end) (escapes decoded). */
export function stringValue(text: string, start: number, end: number): string {
  const inner = text.slice(start + 1, end - 1);
  return inner.includes('\\') ? (JSON.parse(text.slice(start, end)) as string) : inner;
}

/** Index after the JSON value that starts at `i` (no blanks before it). */
export function valueEnd(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c === 0x7b || c === 0x5b) {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const ch = text.charCodeAt(j);
      if (ch === QUOTE) j = stringEnd(text, j) - 1;
      else if (ch === 0x7b || ch === 0x5b) depth++;
      else if ((ch === 0x7d || ch === 0x5d) && --depth === 0) return j + 1;
    }
    return text.length;
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  while (j < text.length) {
    const ch = text.charCodeAt(j);
    if (ch === 0x2c || ch === 0x7d || ch === 0x5d || ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09) break;
    j++;
  }
  return j;
}

/** What {@link walkJson} reports. */
export interface JsonVisitor {
  /**
   * A value starting at `start`, under `key` (undefined for an array's item
   * and the top value). Return the index after it to take it whole (it is
   * not walked into), or undefined to have it walked.
   */
  value(start: number, key: string | undefined, index: JsonIndex): number | undefined;
  /** A string literal at [start, end): an object's key, or a value. */
  string(start: number, end: number, isKey: boolean): void;
}

/**
 * Walks valid JSON text depth first, in text order: every value, every
 * key, every string (each occurrence of a duplicated key included).
 */
export function walkJson(text: string, visitor: JsonVisitor): void {
  walkValue(text, skipBlanks(text, 0), undefined, visitor, new JsonIndex(text));
}

/**
 * Where each value of valid JSON text ends, and how deep its containers
 * nest: for containers from one pass over the text, made on the first ask
 * (asking valueEnd at every level of nested objects would be quadratic).
 */
export class JsonIndex {
  private ends: Int32Array | undefined;
  private depths: Uint16Array | undefined;
  private asked = 0;

  constructor(private readonly text: string) {}

  /** Index after the value starting at `start`. */
  end(start: number): number {
    const c = this.text[start];
    if (c !== '{' && c !== '[') return valueEnd(this.text, start);
    // A few containers are cheaper to scan one by one; many (nested ones, each asked) are indexed once.
    if (!this.ends && ++this.asked <= 8) return valueEnd(this.text, start);
    if (!this.ends) this.build();
    return this.ends![start]!;
  }

  /** Levels of containers in the value at `start` (1 for `{}` or `[1]`, 0 for a scalar), at most 65535. */
  depth(start: number): number {
    const c = this.text[start];
    if (c !== '{' && c !== '[') return 0;
    if (!this.depths) this.build();
    return this.depths![start]!;
  }

  private build(): void {
    const text = this.text;
    const ends = new Int32Array(text.length);
    const depths = new Uint16Array(text.length);
    const open: { at: number; below: number }[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === QUOTE) i = stringEnd(text, i) - 1;
      else if (c === 0x7b || c === 0x5b) open.push({ at: i, below: 0 });
      else if (c === 0x7d || c === 0x5d) {
        const closed = open.pop()!;
        ends[closed.at] = i + 1;
        const depth = Math.min(closed.below + 1, 65_535);
        depths[closed.at] = depth;
        const parent = open[open.length - 1];
        if (parent && parent.below < depth) parent.below = depth;
      }
    }
    this.ends = ends;
    this.depths = depths;
  }
}

function walkValue(text: string, i: number, key: string | undefined, visitor: JsonVisitor, index: JsonIndex): number {
  const taken = visitor.value(i, key, index);
  if (taken !== undefined) return taken;
  const c = text[i];
  if (c === '"') {
    const end = stringEnd(text, i);
    visitor.string(i, end, false);
    return end;
  }
  if (c === '[') {
    i = skipBlanks(text, i + 1);
    if (text[i] === ']') return i + 1;
    for (;;) {
      i = skipBlanks(text, walkValue(text, i, undefined, visitor, index));
      if (text[i] === ']') return i + 1;
      i = skipBlanks(text, i + 1); // the comma
    }
  }
  if (c === '{') {
    i = skipBlanks(text, i + 1);
    if (text[i] === '}') return i + 1;
    for (;;) {
      const keyEnd = stringEnd(text, i);
      visitor.string(i, keyEnd, true);
      const name = stringValue(text, i, keyEnd);
      i = skipBlanks(text, skipBlanks(text, keyEnd) + 1); // the colon
      i = skipBlanks(text, walkValue(text, i, name, visitor, index));
      if (text[i] === '}') return i + 1;
      i = skipBlanks(text, i + 1); // the comma
    }
  }
  return valueEnd(text, i);
}

/** A span of text to replace, and its replacement (computed when the edits are applied). */
export interface TextEdit {
  start: number;
  end: number;
  render(): string;
}

/** `text` with its edits (in text order, not overlapping) applied. */
export function applyEdits(text: string, edits: readonly TextEdit[]): string {
  let out = '';
  let at = 0;
  for (const e of edits) {
    out += text.slice(at, e.start) + e.render();
    at = e.end;
  }
  return out + text.slice(at);
}

/** True when `text` is a JSON object, array or string (what a field may hold as JSON). */
export function isJsonText(text: string): boolean {
  const first = text.charCodeAt(skipBlanks(text, 0));
  if (first !== 0x7b && first !== 0x5b && first !== QUOTE) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * True when an object in valid JSON text has a key twice. JSON.parse keeps
 * the last one, so a check of the parsed value (is this a protected value,
 * a mask?) would not see what the earlier one holds.
 */
export function hasDuplicateKeys(text: string): boolean {
  const objects: { keys: Set<string>; expectKey: boolean }[] = [];
  const containers: boolean[] = []; // true: an object
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      const top = containers[containers.length - 1] ? objects[objects.length - 1] : undefined;
      if (top?.expectKey) {
        const key = stringValue(text, i, end);
        if (top.keys.has(key)) return true;
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end - 1;
    } else if (c === 0x7b) {
      containers.push(true);
      objects.push({ keys: new Set(), expectKey: true });
    } else if (c === 0x5b) {
      containers.push(false);
    } else if (c === 0x7d || c === 0x5d) {
      if (containers.pop()) objects.pop();
    } else if (c === 0x2c && containers[containers.length - 1]) {
      objects[objects.length - 1]!.expectKey = true;
    }
  }
  return false;
}
