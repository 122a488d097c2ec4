import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { assetPath } from '../core/paths.js';

/** Version of audit-event.avsc this code writes; bump with every schema change. */
export const SCHEMA_VERSION = 1;

/** Compatibility every Auditline subject is held to. */
export const SUBJECT_COMPATIBILITY = 'BACKWARD' as const;

/** The raw JSON of the envelope schema, with its dataClass attributes. */
export type RawSchema = Record<string, unknown>;

let cached: { raw: RawSchema; text: string; type: avro.Type } | undefined;

/** Loads schemas/avro/audit-event.avsc once. */
export function auditEventSchema(): { raw: RawSchema; text: string; type: avro.Type } {
  if (!cached) {
    const text = readFileSync(assetPath('schemas', 'avro', 'audit-event.avsc'), 'utf8');
    const raw = JSON.parse(text) as RawSchema;
    cached = { raw, text: JSON.stringify(raw), type: avro.Type.forSchema(raw as avro.Schema) };
  }
  return cached;
}

/** TopicNameStrategy: the value subject of a topic. */
export function valueSubject(topic: string): string {
  return `${topic}-value`;
}

/** The symbols of an enum of the audit event schema (`Trigger`, `StepStatus`, `ExecutionStatus`, `ActorKind`), in schema order. */
export function enumSymbols(name: string): string[] {
  const find = (node: unknown): string[] | undefined => {
    if (Array.isArray(node)) {
      for (const n of node) {
        const found = find(n);
        if (found) return found;
      }
      return undefined;
    }
    if (node === null || typeof node !== 'object') return undefined;
    const o = node as Record<string, unknown>;
    if (o.type === 'enum' && o.name === name && Array.isArray(o.symbols)) return o.symbols.map(String);
    for (const v of Object.values(o)) {
      const found = find(v);
      if (found) return found;
    }
    return undefined;
  };
  const symbols = find(auditEventSchema().raw);
  if (!symbols) throw new Error(`the audit event schema has no enum ${name}`);
  return symbols;
}
