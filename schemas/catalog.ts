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
