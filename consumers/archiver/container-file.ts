import { promisify } from 'node:util';
import { deflateRaw } from 'node:zlib';
import avro from 'avsc';

/**
 * Avro object container files (Avro 1.x specification, codec `deflate`):
 * the writer schema in the header, so a file is readable with any Avro
 * library and nothing else (the tests read them with avsc's file decoder).
 *
 * The framing is written here with avsc's types for the header record and
 * the block longs, not with avsc's BlockEncoder: the records arrive already
 * Avro-encoded with their writer schema (the Kafka body after the 5-byte
 * Confluent header), and BlockEncoder only accepts values, which would mean
 * decoding and re-encoding every record - measured at about three times the
 * cost of deflate itself (docs/archiver.md, "Performance"). The sync marker is
 * passed in, so the bytes are a pure function of the inputs.
 */
export interface ContainerFileInput {
  /** The writer schema as registered (parsed JSON); it goes into the header. */
  schema: avro.Schema;
  /** Records, each already encoded with `schema` (Avro binary). */
  bodies: readonly Buffer[];
  syncMarker: Buffer;
  /** Extra header entries (`auditline.*`), UTF-8. */
  metadata: Record<string, string>;
  /** zlib level 1-9. */
  deflateLevel: number;
  /** Uncompressed bytes per block. @default 262144 */
  blockSize?: number;
}

/** The header record of the specification (`org.apache.avro.file.Header`). */
const HEADER = avro.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
});
const LONG = avro.Type.forSchema('long');
const MAGIC = Buffer.from([0x4f, 0x62, 0x6a, 0x01]);
const deflate = promisify(deflateRaw);

export async function encodeContainerFile(input: ContainerFileInput): Promise<Buffer> {
  if (input.syncMarker.length !== 16) throw new Error('sync marker must be 16 bytes');
  // Key order as avsc writes it: schema, codec, then the caller's entries.
  const meta: Record<string, Buffer> = { 'avro.schema': Buffer.from(JSON.stringify(input.schema), 'utf8'), 'avro.codec': Buffer.from('deflate', 'utf8') };
  for (const [k, v] of Object.entries(input.metadata)) if (!k.startsWith('avro.')) meta[k] = Buffer.from(v, 'utf8');
  const parts: Buffer[] = [HEADER.toBuffer({ magic: MAGIC, meta, sync: input.syncMarker })];
  const blockSize = input.blockSize ?? 256 * 1024;
  let block: Buffer[] = [];
  let size = 0;
  const flush = async () => {
    const data = await deflate(Buffer.concat(block, size), { level: input.deflateLevel });
    parts.push(LONG.toBuffer(block.length), LONG.toBuffer(data.length), data, input.syncMarker);
    block = [];
    size = 0;
  };
  for (const body of input.bodies) {
    // Blocks end where avsc's BlockEncoder ends them (before the record that would overflow): same bytes as avsc would write.
    if (size > 0 && size + body.length > blockSize) await flush();
    block.push(body);
    size += body.length;
  }
  if (block.length > 0) await flush();
  return Buffer.concat(parts);
}

export interface DecodedContainerFile {
  schema: avro.Schema;
  metadata: Record<string, string>;
  records: unknown[];
}

/** Reads a container file from memory with avsc alone (what `replay` and `reindex` use); with `readerSchema`, records are resolved into it. */
export async function decodeContainerFile(file: Buffer, readerSchema?: avro.Schema): Promise<DecodedContainerFile> {
  const decoder = new avro.streams.BlockDecoder(readerSchema ? { readerSchema } : {});
  const records: unknown[] = [];
  let metadata: Record<string, string> = {};
  let schema: avro.Schema = 'null';
  decoder.on('metadata', (_type: avro.Type, _codec: string, header: { meta: Record<string, Buffer> }) => {
    metadata = Object.fromEntries(Object.entries(header.meta).map(([k, v]) => [k, v.toString('utf8')]));
    schema = JSON.parse(metadata['avro.schema'] ?? '"null"') as avro.Schema;
  });
  const done = new Promise<void>((resolve, reject) => {
    decoder.on('data', (record: unknown) => records.push(record));
    decoder.on('end', () => resolve());
    decoder.on('error', reject);
  });
  decoder.end(file);
  await done;
  return { schema, metadata, records };
}
