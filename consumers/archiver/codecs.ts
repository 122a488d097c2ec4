import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { deflateRaw, inflateRaw } from 'node:zlib';

/**
 * Block codecs of the archive's Avro container files. Only codecs of the
 * Avro specification, so that any Avro library reads the archive without
 * Auditline: `deflate` (every implementation) and `zstandard` (Avro 1.9+:
 * Java `DataFileReader`, Python fastavro with `zstandard` installed, Rust
 * apache-avro; avsc through the `codecs` option, see
 * {@link ARCHIVE_DECODER_CODECS}). Both compress on libuv's thread pool.
 * Why zstandard is the default: docs/archiver.md, "Performance".
 */
export const ARCHIVE_CODECS = ['zstandard', 'deflate'] as const;
export type ArchiveCodec = (typeof ARCHIVE_CODECS)[number];

/** How a file's blocks are compressed; part of what makes its bytes, so a retry must use the same. */
export interface BlockCompression {
  codec: ArchiveCodec;
  /** deflate 1-9, zstandard 1-19. */
  level: number;
  /** Uncompressed bytes per block: the unit each codec compresses on its own (deflate sees 32 KiB back whatever the block). */
  blockBytes: number;
}

/** Levels each codec takes. */
export const CODEC_LEVELS: Record<ArchiveCodec, { min: number; max: number }> = { deflate: { min: 1, max: 9 }, zstandard: { min: 1, max: 19 } };

// The package's index.js drops the level argument; its bindings take it (zstd frames with the content size, one per block).
const zstd = createRequire(import.meta.url)('@mongodb-js/zstd/bindings.js') as {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
};
const deflate = promisify(deflateRaw);

/** Compresses one block's bytes (zstandard: one frame; deflate: raw deflate, as the specification says). */
export function compressBlock(compression: Pick<BlockCompression, 'codec' | 'level'>, data: Buffer): Promise<Buffer> {
  return compression.codec === 'zstandard' ? zstd.compress(data, compression.level) : deflate(data, { level: compression.level });
}

type Callback = (err: Error | null, out?: Buffer) => void;

/** Decompressors for avsc's BlockDecoder / createFileDecoder (`{ codecs: ARCHIVE_DECODER_CODECS }`): every codec the archive may hold. */
export const ARCHIVE_DECODER_CODECS: Record<string, (data: Buffer, cb: Callback) => void> = {
  null: (data, cb) => cb(null, data),
  deflate: (data, cb) => inflateRaw(data, cb),
  zstandard: (data, cb) => void zstd.decompress(data).then((out) => cb(null, out), (err: Error) => cb(err)),
};
