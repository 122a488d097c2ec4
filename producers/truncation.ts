import { createHash } from 'node:crypto';
import type { Truncation } from '../schemas/index.js';

/** A JSON payload cut to size: the text to store and, when cut, what the full value was. */
export interface FittedJson {
  text: string;
  truncation: Truncation | null;
}

/**
 * Keeps JSON text within `maxBytes` (UTF-8). Larger text is replaced by a
 * valid JSON object `{"$truncated":true,"original_size_bytes":N,"sha256":H,
 * "preview":"<longest prefix that fits>"}`, so every stored payload parses
 * and names the size and SHA-256 of the full value it stands for.
 */
export function fitJson(text: string, maxBytes: number): FittedJson {
  const size = Buffer.byteLength(text, 'utf8');
  if (size <= maxBytes) return { text, truncation: null };
  const truncation: Truncation = { original_size_bytes: size, sha256: createHash('sha256').update(text, 'utf8').digest('hex') };
  const render = (chars: number): string =>
    JSON.stringify({ $truncated: true, original_size_bytes: size, sha256: truncation.sha256, preview: safePrefix(text, chars) });
  // Escaping can make the preview grow, so search for the longest prefix whose rendering fits.
  let lo = 0;
  let hi = Math.min(text.length, maxBytes);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (Buffer.byteLength(render(mid), 'utf8') <= maxBytes) lo = mid;
    else hi = mid - 1;
  }
  return { text: render(lo), truncation };
}

/** Free text (error messages, reasons) cut to `maxBytes` with a visible marker. */
export function capText(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const marker = '…[truncated]';
  let chars = Math.min(text.length, maxBytes);
  while (chars > 0 && Buffer.byteLength(safePrefix(text, chars), 'utf8') + Buffer.byteLength(marker, 'utf8') > maxBytes) {
    chars = Math.floor(chars * 0.9);
  }
  return safePrefix(text, chars) + marker;
}

/** First `chars` UTF-16 units, never ending inside a surrogate pair. */
function safePrefix(text: string, chars: number): string {
  const cut = text.slice(0, chars);
  const last = cut.charCodeAt(cut.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}
