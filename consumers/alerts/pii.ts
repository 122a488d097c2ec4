import { unwrapPayload, type AuditEvent } from '../../schemas/index.js';
import { scannedFieldPaths } from '../../core/pii/scanned-fields.js';

/**
 * "This event touched PII" (docs/alerts.md, "Knowing that an execution
 * touched PII"): one of the fields the tokenizer scans (tagged
 * `dataClass: pii` in the schema, or a free-text field such as a step name:
 * scannedFieldPaths) holds a protected value, i.e. the tokenizer's `{"$pii": …}` object
 * or inline `[[pii:…]]` marker, or the producer's hashed `{"$pii": "…"}`.
 * audit.events only holds tokenized events, so a marker is exactly where
 * personal data was; nothing is decrypted or kept, only the yes/no.
 */
export class PiiDetector {
  private readonly paths = scannedFieldPaths();

  touchesPii(event: AuditEvent): boolean {
    const { kind, value } = unwrapPayload(event.payload);
    for (const segments of this.paths.get(kind) ?? []) {
      let node: unknown = value;
      for (const s of segments) node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[s] : undefined;
      if (typeof node === 'string' && (node.includes('"$pii"') || node.includes('[[pii:'))) return true;
    }
    return false;
  }
}
