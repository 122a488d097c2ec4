import avro from 'avsc';
import { ARCHIVE_DECODER_CODECS } from '../../consumers/archiver/index.js';

/** Reads an archive file from disk with avsc alone plus the codecs' decompressors: what any Avro reader needs, nothing of Auditline's. */
export async function readAvroFile(file: string): Promise<{ codec: string; records: unknown[] }> {
  const records: unknown[] = [];
  let codec = '';
  await new Promise<void>((resolve, reject) =>
    avro
      .createFileDecoder(file, { codecs: ARCHIVE_DECODER_CODECS } as Parameters<typeof avro.createFileDecoder>[1])
      .on('metadata', (_t: avro.Type, c: string) => (codec = c))
      .on('data', (r: unknown) => records.push(r))
      .on('end', resolve)
      .on('error', reject),
  );
  return { codec, records };
}
