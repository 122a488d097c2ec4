import { auditEventSchema, dataClassIndex, unwrapPayload, type AuditEvent, type EventKind } from '../../schemas/index.js';

/**
 * "This event touched PII" (docs/alerts.md, "Knowing that an execution
 * touched PII"): one of the event's fields tagged `dataClass: pii` in the
 * schema holds a protected value, i.e. the tokenizer's `{"$pii": …}` object
 * or inline `[[pii:…]]` marker, or the producer's hashed `{"$pii": "…"}`.
 * audit.events only holds tokenized events, so a marker is exactly where
 * personal data was; nothing is decrypted or kept, only the yes/no.
 */
export class PiiDetector {
  private readonly paths = new Map<EventKind, string[][]>();

  constructor() {
    for (const [path, cls] of dataClassIndex(auditEventSchema().raw)) {
      if (cls !== 'pii') continue;
      const [root, kind, ...rest] = path.split('.');
      if (root !== 'payload' || !kind || rest.length === 0) continue;
      const list = this.paths.get(kind as EventKind) ?? [];
      list.push(rest);
      this.paths.set(kind as EventKind, list);
    }
  }

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
