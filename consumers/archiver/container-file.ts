import { deflateRaw } from 'node:zlib';
import avro from 'avsc';

/**
 * Avro object container files (Avro 1.x spec, codec `deflate`): the writer
 * schema in the header, so a file is readable with any Avro library and
 * nothing else. Written by avsc's own BlockEncoder; the sync marker is
 * passed in (avsc would pick a random one), which makes the bytes a pure
 * function of schema, records, metadata and marker.
 */
export interface ContainerFileInput {
  /** The writer schema as registered (parsed JSON); it goes into the header verbatim. */
  schema: avro.Schema;
  /** Records, each a value of `schema`. */
  records: readonly unknown[];
  syncMarker: Buffer;
  /** Extra header entries (`auditline.*`), UTF-8. */
  metadata: Record<string, string>;
  /** zlib level 1-9. */
  deflateLevel: number;
  /** Uncompressed bytes per block. @default 262144 */
  blockSize?: number;
}

export async function encodeContainerFile(input: ContainerFileInput): Promise<Buffer> {
  const level = input.deflateLevel;
  const encoder = new avro.streams.BlockEncoder(input.schema, {
    codec: 'deflate',
    codecs: { deflate: (buf: Buffer, cb: (err: Error | null, out: Buffer) => void) => deflateRaw(buf, { level }, cb) },
    syncMarker: input.syncMarker,
    blockSize: input.blockSize ?? 256 * 1024,
    metadata: Object.fromEntries(Object.entries(input.metadata).map(([k, v]) => [k, Buffer.from(v, 'utf8')])),
    writeHeader: true,
  } as ConstructorParameters<typeof avro.streams.BlockEncoder>[1]);
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    encoder.on('data', (chunk: Buffer) => chunks.push(chunk));
    encoder.on('end', () => resolve(Buffer.concat(chunks)));
    encoder.on('error', reject);
  });
  for (const record of input.records) encoder.write(record);
  encoder.end();
  return done;
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
