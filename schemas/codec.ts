import avro from 'avsc';
import { AuditlineError, errorMessage } from '../core/errors.js';
import { auditEventSchema, valueSubject } from './catalog.js';
import type { RegistryClient } from './registry.js';
import type { AuditEvent } from './types.js';
import { HEADER_SIZE, unframe, writeHeader } from './wire-format.js';

/**
 * Encodes and decodes audit events in the Confluent wire format.
 *
 * `init()` registers the envelope schema under the topic's value subject and
 * caches its id, so `encode` is synchronous and makes no request. `decode`
 * accepts any schema id of the registry: a writer schema other than ours is
 * fetched once and resolved into our reader schema (schema evolution).
 */
export class AuditEventCodec {
  private readonly type: avro.Type;
  private schemaId: number | undefined;
  private readonly readers = new Map<number, Promise<avro.Resolver | null>>();
  private scratch: Buffer = Buffer.allocUnsafe(16 * 1024);

  constructor(
    private readonly registry: RegistryClient,
    readonly topic: string,
  ) {
    this.type = auditEventSchema().type;
  }

  /** Registers (idempotently) and caches the schema id. Call once before encode. */
  async init(): Promise<number> {
    if (this.schemaId === undefined) {
      this.schemaId = await this.registry.register(valueSubject(this.topic), auditEventSchema().text);
    }
    return this.schemaId;
  }

  /** Id under which this codec writes; throws if init() was not awaited. */
  get id(): number {
    if (this.schemaId === undefined) throw new Error('AuditEventCodec.init() must complete before encode()');
    return this.schemaId;
  }

  /** Avro-encodes and frames one event. Throws ENCODE_FAILED naming the offending fields (never their values). */
  encode(event: AuditEvent): Buffer {
    const id = this.id;
    // Encoding into a reused scratch buffer after the header leaves one
    // allocation and one copy per event instead of two of each (producer hot path).
    let end: number;
    try {
      end = this.type.encode(event, this.scratch, HEADER_SIZE);
      if (end < 0) {
        // avsc returns minus the number of missing bytes.
        this.scratch = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.scratch.length - end));
        end = this.type.encode(event, this.scratch, HEADER_SIZE);
      }
    } catch (err) {
      throw encodeError(this.type, event, err);
    }
    writeHeader(this.scratch, id);
    return Buffer.from(this.scratch.subarray(0, end));
  }

  /** Decodes one framed message. DECODE_FAILED and WIRE_FORMAT_INVALID are not retriable; registry outages are. */
  async decode(message: Buffer): Promise<AuditEvent> {
    const { schemaId, body } = unframe(message);
    const resolver = await this.readerFor(schemaId);
    try {
      return (resolver ? this.type.fromBuffer(body, resolver) : this.type.fromBuffer(body)) as AuditEvent;
    } catch (err) {
      throw new AuditlineError('DECODE_FAILED', `cannot decode a message written with schema id ${schemaId}: ${errorMessage(err)}`, {
        cause: err,
        details: { schemaId },
      });
    }
  }

  private readerFor(schemaId: number): Promise<avro.Resolver | null> {
    if (schemaId === this.schemaId) return Promise.resolve(null);
    let reader = this.readers.get(schemaId);
    if (!reader) {
      reader = this.buildResolver(schemaId);
      this.readers.set(schemaId, reader);
      // A failed lookup (registry down) must be retried later, not cached.
      reader.catch(() => this.readers.delete(schemaId));
    }
    return reader;
  }

  private async buildResolver(schemaId: number): Promise<avro.Resolver | null> {
    const text = await this.registry.schemaText(schemaId);
    let writer: avro.Type;
    try {
      writer = avro.Type.forSchema(JSON.parse(text) as avro.Schema);
    } catch (err) {
      throw new AuditlineError('SCHEMA_INVALID', `schema id ${schemaId} is not a usable Avro schema: ${errorMessage(err)}`, { cause: err, details: { schemaId } });
    }
    if (writer.equals(this.type)) return null;
    try {
      return this.type.createResolver(writer);
    } catch (err) {
      throw new AuditlineError('DECODE_FAILED', `schema id ${schemaId} cannot be read as the audit event schema: ${errorMessage(err)}`, {
        cause: err,
      });
    }
  }
}

/** Names every path where `value` does not match `type`, without the values. */
export function invalidPaths(type: avro.Type, value: unknown): string[] {
  const paths: string[] = [];
  type.isValid(value, {
    errorHook: (path: string[], _any: unknown, t: avro.Type) => {
      paths.push(`${path.join('.') || '(root)'} (expected ${describeType(t)})`);
    },
  });
  return paths;
}

function describeType(t: avro.Type): string {
  const name = t.typeName;
  return t.name ? `${name} ${t.name}` : name;
}

function encodeError(type: avro.Type, event: AuditEvent, err: unknown): AuditlineError {
  const paths = invalidPaths(type, event);
  const where = paths.length > 0 ? paths.join('; ') : errorMessage(err);
  return new AuditlineError('ENCODE_FAILED', `audit event does not match the schema at ${where}`, {
    cause: err,
    details: { event_id: typeof event?.event_id === 'string' ? event.event_id : undefined },
  });
}
