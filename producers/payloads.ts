import type { ErrorInfo, Truncation } from '../schemas/index.js';
import { toJsonText } from './json-text.js';
import type { PiiPolicy } from './pii.js';
import { capText, fitJson } from './truncation.js';

/** A caller's value made ready for a JSON-text field of an event. */
export interface JsonField {
  text: string;
  truncation: Truncation | null;
  /** A PII field was found in the value (whatever the mode did with it). */
  piiFound: boolean;
}

/**
 * Turns caller values into event fields, in this order: serialize (refusing
 * what JSON cannot hold), apply the PII mode to PII fields at any depth,
 * then cut to maxPayloadBytes. Size and SHA-256 of a cut payload describe
 * the JSON after PII handling, so a hash never fingerprints cleartext the
 * mode meant to hide.
 */
export class PayloadEncoder {
  constructor(
    readonly pii: PiiPolicy,
    readonly maxPayloadBytes: number,
    private readonly onTruncate: () => void = () => {},
  ) {}

  /** `known` collects the PII strings of one execution, to scrub its free text. */
  json(value: unknown, where: string, known: Set<string>): JsonField {
    if (!this.pii.protects) {
      // Cleartext changes no value, so the text is JSON.stringify's own, several times faster without a
      // replacer; the walk below then only runs to tell whether a PII field is present when the text may hold one.
      const text = toJsonText(value, where);
      if (!this.pii.mayHoldField(text)) return this.fit(text, false);
    }
    let piiFound = false;
    const text = toJsonText(value, where, (key, v) => {
      if (!this.pii.isPiiField(key)) return v;
      const written = this.pii.protect(v, known);
      // Found means written: a member JSON drops (undefined, a function) carries nothing.
      if (written !== undefined && typeof written !== 'function' && typeof written !== 'symbol') piiFound = true;
      return written;
    });
    return this.fit(text, piiFound);
  }

  private fit(text: string, piiFound: boolean): JsonField {
    const fitted = fitJson(text, this.maxPayloadBytes);
    if (fitted.truncation) this.onTruncate();
    return { text: fitted.text, truncation: fitted.truncation, piiFound };
  }

  /** Free text of a PII-class field (branch reason), scrubbed (hash/mask modes) and capped; piiFound when scrubbing removed something. */
  text(value: string, known: ReadonlySet<string>): { text: string; piiFound: boolean } {
    const scrubbed = this.pii.scrubText(value, known);
    return { text: capText(scrubbed, this.maxPayloadBytes), piiFound: scrubbed !== value };
  }

  /** An error as stored: type and scrubbed, capped message. */
  error(err: unknown, known: ReadonlySet<string>): { info: ErrorInfo; piiFound: boolean } {
    const described = describeError(err);
    const message = this.text(described.message, known);
    return { info: { type: capText(described.type, 200), message: message.text }, piiFound: message.piiFound };
  }
}

/**
 * Type and message of anything thrown: an Error's name (or its string
 * `code` when the name is generic), an `{type, message}` object as given,
 * any other value as text.
 */
export function describeError(err: unknown): ErrorInfo {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const generic = err.name === 'Error' || err.name === 'AuditlineError';
    return { type: generic && typeof code === 'string' ? code : err.name || 'Error', message: err.message };
  }
  if (typeof err === 'object' && err !== null) {
    const { type, message } = err as { type?: unknown; message?: unknown };
    if (typeof type === 'string' && typeof message === 'string') return { type, message };
    if (typeof message === 'string') return { type: 'Error', message };
  }
  let message: string;
  try {
    message = String(err);
  } catch {
    message = '(unprintable value)';
  }
  return { type: 'NonErrorThrown', message };
}
