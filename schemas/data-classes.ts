import type { RawSchema } from './catalog.js';

/** Data classes a schema field may be tagged with (attribute `dataClass`). */
export type DataClass = 'pii' | 'sox' | 'internal';
export const DATA_CLASSES: readonly DataClass[] = ['pii', 'sox', 'internal'];

/**
 * Walks an Avro schema and returns the data class of every field, keyed by
 * a dotted path. Union branches that are records add their short name, so
 * `payload.StepFinished.error.message` names the message of a step error.
 * Throws when a field has no tag or an unknown one: an untagged field would
 * escape tokenization and retention rules.
 */
export function dataClassIndex(schema: RawSchema): Map<string, DataClass> {
  const index = new Map<string, DataClass>();
  const named = new Map<string, RawSchema>();
  walkRecord(schema, '', index, named);
  return index;
}

/** Paths of all fields tagged with `dataClass`. */
export function fieldsOfClass(schema: RawSchema, dataClass: DataClass): string[] {
  return [...dataClassIndex(schema)].filter(([, c]) => c === dataClass).map(([p]) => p);
}

function walkRecord(record: RawSchema, prefix: string, index: Map<string, DataClass>, named: Map<string, RawSchema>): void {
  const name = String(record.name);
  named.set(name, record);
  const fields = record.fields as RawSchema[];
  for (const field of fields) {
    const path = prefix ? `${prefix}.${String(field.name)}` : String(field.name);
    const tag = field.dataClass;
    if (tag !== 'pii' && tag !== 'sox' && tag !== 'internal') {
      throw new Error(`field ${path} of record ${name} has dataClass ${JSON.stringify(tag)}; expected pii, sox or internal`);
    }
    index.set(path, tag);
    walkType(field.type, path, index, named);
  }
}

function walkType(type: unknown, path: string, index: Map<string, DataClass>, named: Map<string, RawSchema>): void {
  if (Array.isArray(type)) {
    const records = type.filter((t) => isRecord(t) || (typeof t === 'string' && named.has(t)));
    for (const branch of type) {
      const record = isRecord(branch) ? branch : typeof branch === 'string' ? named.get(branch) : undefined;
      if (!record) continue;
      // A union of several records names the branch; ["null", Record] does not.
      const branchPath = records.length > 1 ? `${path}.${String(record.name)}` : path;
      walkRecord(record, branchPath, index, named);
    }
    return;
  }
  if (isRecord(type)) walkRecord(type, path, index, named);
  else if (typeof type === 'string' && named.has(type)) walkRecord(named.get(type)!, path, index, named);
}

function isRecord(t: unknown): t is RawSchema {
  return typeof t === 'object' && t !== null && !Array.isArray(t) && (t as RawSchema).type === 'record';
}
