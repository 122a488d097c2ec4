import avro from 'avsc';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import type { RegistryClient } from '../../schemas/index.js';

/** What the archiver reads from each record: the fields of the index. */
export interface IndexFields {
  execution_id: string;
  workflow_id: string;
  event_time: number;
}

/** A registered writer schema: its parsed JSON (for file headers) and a projection that reads only the index fields of a body. */
export interface WriterSchema {
  id: number;
  schema: avro.Schema;
  /** Decodes a whole body with the writer schema but keeps only the index fields (the rest is skipped, not built): checks the body and is cheap. */
  readIndexFields(body: Buffer): IndexFields;
}

/**
 * Writer schemas by registry id, fetched once each. Records are archived
 * under the schema they were written with (the file header carries it), so
 * an archive file never depends on the registry to be read.
 */
export class WriterSchemas {
  private readonly byId = new Map<number, Promise<WriterSchema>>();
  private readonly loaded = new Map<number, WriterSchema>();

  constructor(private readonly registry: Pick<RegistryClient, 'schemaText'>) {}

  /** The schema if it was loaded already: the hot path takes it without a promise per record. */
  cached(id: number): WriterSchema | undefined {
    return this.loaded.get(id);
  }

  get(id: number): Promise<WriterSchema> {
    let found = this.byId.get(id);
    if (!found) {
      found = this.load(id);
      this.byId.set(id, found);
      // A registry outage must be retried later, not cached.
      found.then((w) => this.loaded.set(id, w)).catch(() => this.byId.delete(id));
    }
    return found;
  }

  private async load(id: number): Promise<WriterSchema> {
    const text = await this.registry.schemaText(id);
    try {
      const schema = JSON.parse(text) as avro.Schema;
      const writer = avro.Type.forSchema(schema);
      const reader = avro.Type.forSchema({
        type: 'record',
        name: writer.name ?? 'AuditEvent',
        fields: [
          { name: 'execution_id', type: 'string' },
          { name: 'workflow_id', type: 'string' },
          { name: 'event_time', type: 'long' },
        ],
      });
      const resolver = reader.createResolver(writer);
      return {
        id,
        schema,
        // fromBuffer also fails on trailing bytes: the body is exactly one record of the writer schema.
        readIndexFields: (body) => reader.fromBuffer(body, resolver) as IndexFields,
      };
    } catch (err) {
      throw new AuditlineError('SCHEMA_INVALID', `writer schema id ${id} is not a usable Avro schema: ${errorMessage(err)}`, { cause: err, details: { schemaId: id } });
    }
  }
}
