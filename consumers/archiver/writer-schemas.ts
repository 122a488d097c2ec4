import avro from 'avsc';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import type { RegistryClient } from '../../schemas/index.js';

/** A registered writer schema: its parsed JSON (for file headers) and its avsc type (to decode record bodies). */
export interface WriterSchema {
  id: number;
  schema: avro.Schema;
  type: avro.Type;
}

/**
 * Writer schemas by registry id, fetched once each. Records are archived
 * under the schema they were written with (the file header carries it), so
 * an archive file never depends on the registry to be read.
 */
export class WriterSchemas {
  private readonly byId = new Map<number, Promise<WriterSchema>>();

  constructor(private readonly registry: Pick<RegistryClient, 'schemaText'>) {}

  get(id: number): Promise<WriterSchema> {
    let found = this.byId.get(id);
    if (!found) {
      found = this.load(id);
      this.byId.set(id, found);
      // A registry outage must be retried later, not cached.
      found.catch(() => this.byId.delete(id));
    }
    return found;
  }

  private async load(id: number): Promise<WriterSchema> {
    const text = await this.registry.schemaText(id);
    try {
      const schema = JSON.parse(text) as avro.Schema;
      return { id, schema, type: avro.Type.forSchema(schema) };
    } catch (err) {
      throw new AuditlineError('SCHEMA_INVALID', `writer schema id ${id} is not a usable Avro schema: ${errorMessage(err)}`, { cause: err, details: { schemaId: id } });
    }
  }
}
