import avro from 'avsc';
import { ARCHIVE_DECODER_CODECS, compressBlock, type BlockCompression } from './codecs.js';

/**
 * Avro object container files (Avro 1.x specification, codec `zstandard` or
 * `deflate`, see codecs.ts):
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
  compression: BlockCompression;
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

/**
 * Builds one container file as records arrive: each full block is handed to
 * the codec (libuv's thread pool) at once, so compressing a block overlaps
 * with reading the next records, and blocks of one file compress in
 * parallel when a core is free; `finish` writes the header and the blocks in
 * their order, so the bytes do not depend on which block finished first.
 * The output is the same as encodeContainerFile's for the same input.
 */
export class ContainerFileBuilder {
  private readonly blocks: { count: number; data: Promise<Buffer> }[] = [];
  private block: Buffer[] = [];
  private size = 0;

  constructor(private readonly compression: BlockCompression) {}

  add(body: Buffer): void {
    // Blocks end where avsc's BlockEncoder ends them (before the record that would overflow): same bytes as avsc would write.
    if (this.size > 0 && this.size + body.length > this.compression.blockBytes) this.seal();
    this.block.push(body);
    this.size += body.length;
  }

  async finish(header: { schema: avro.Schema; syncMarker: Buffer; metadata: Record<string, string> }): Promise<Buffer> {
    if (header.syncMarker.length !== 16) throw new Error('sync marker must be 16 bytes');
    if (this.block.length > 0) this.seal();
    // Key order as avsc writes it: schema, codec, then the caller's entries.
    const meta: Record<string, Buffer> = { 'avro.schema': Buffer.from(JSON.stringify(header.schema), 'utf8'), 'avro.codec': Buffer.from(this.compression.codec, 'utf8') };
    for (const [k, v] of Object.entries(header.metadata)) if (!k.startsWith('avro.')) meta[k] = Buffer.from(v, 'utf8');
    const parts: Buffer[] = [HEADER.toBuffer({ magic: MAGIC, meta, sync: header.syncMarker })];
    for (const b of this.blocks) {
      const data = await b.data;
      parts.push(LONG.toBuffer(b.count), LONG.toBuffer(data.length), data, header.syncMarker);
    }
    return Buffer.concat(parts);
  }

  private seal(): void {
    const data = compressBlock(this.compression, Buffer.concat(this.block, this.size));
    // Awaited in finish(); a failure must not surface as an unhandled rejection before that.
    data.catch(() => undefined);
    this.blocks.push({ count: this.block.length, data });
    this.block = [];
    this.size = 0;
  }
}

/** A whole container file from a list of encoded records. */
export async function encodeContainerFile(input: ContainerFileInput): Promise<Buffer> {
  const builder = new ContainerFileBuilder(input.compression);
  for (const body of input.bodies) builder.add(body);
  return builder.finish({ schema: input.schema, syncMarker: input.syncMarker, metadata: input.metadata });
}

export interface DecodedContainerFile {
  schema: avro.Schema;
  metadata: Record<string, string>;
  records: unknown[];
}

/** Reads a container file from memory with avsc and the archive's codecs (what `replay` and `reindex` use); with `readerSchema`, records are resolved into it. */
export async function decodeContainerFile(file: Buffer, readerSchema?: avro.Schema): Promise<DecodedContainerFile> {
  const decoder = new avro.streams.BlockDecoder({ codecs: ARCHIVE_DECODER_CODECS, ...(readerSchema ? { readerSchema } : {}) });
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
