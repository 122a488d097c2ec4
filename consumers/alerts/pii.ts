import { unwrapPayload, type AuditEvent } from '../../schemas/index.js';
import { scannedFieldPaths } from '../../core/pii/scanned-fields.js';
import { TOKEN_MARKS } from '../tokenizer/index.js';

/**
 * "This event touched PII" (docs/alerts.md, "Knowing that an execution
 * touched PII"): one of the fields the tokenizer scans (tagged
 * `dataClass: pii` in the schema, or a free-text field such as a step name:
 * scannedFieldPaths) holds a protected value, i.e. the tokenizer's `{"$pii": …}` object
 * or inline `[[pii:…]]` marker, or the producer's hashed `{"$pii": "…"}`
 * (`[pii:hmac-sha256:…]` in free text). A producer in mask mode leaves no
 * mark (`a***@example.com`): such PII is not seen.
 * audit.events only holds tokenized events, so a marker is exactly where
 * personal data was; nothing is decrypted or kept, only the yes/no.
 */
/** What protected values leave in a field: the `{"$pii": …}` object (tokenizer, producer hash mode), the tokenizer's inline marker, and the producer's hash mode in free text. */
const PII_MARKS = [...TOKEN_MARKS, '[pii:hmac-sha256:'];

export class PiiDetector {
  private readonly paths = scannedFieldPaths();

  touchesPii(event: AuditEvent): boolean {
    const { kind, value } = unwrapPayload(event.payload);
    for (const segments of this.paths.get(kind) ?? []) {
      let node: unknown = value;
      for (const s of segments) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[s] : undefined;
      if (typeof node === 'string' && PII_MARKS.some((m) => node.includes(m))) return true;
    }
    return false;
  }
}
