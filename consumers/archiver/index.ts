/** Public entry of the archiver: the service, its configuration, and the verify, replay and reindex APIs the CLI uses. */
export { runArchiver } from './main.js';
export { ArchiverService } from './service.js';
export { Archiver, retentionDate, ARCHIVE_CONTENT_TYPE, type ArchiverSettings, type ArchiverDeps } from './archiver.js';
export { loadArchiverConfig, loadSigningKey, loadVerifyKey, ARCHIVER_DEFAULTS, DEFAULT_BLOCK_BYTES, STORAGE_CLASSES, type ArchiverConfig, type StorageClass } from './config.js';
export { ARCHIVER_METRICS, ArchiverMetrics } from './metrics.js';
export { ARCHIVE_CODECS, ARCHIVE_DECODER_CODECS, compressBlock, type ArchiveCodec, type BlockCompression } from './codecs.js';
export { encodeContainerFile, decodeContainerFile, type DecodedContainerFile } from './container-file.js';
export { objectKey, parseObjectKey, digestKey, parseDigestKey, partitionPrefix, syncMarkerFor, sha256Hex } from './keys.js';
export { signDigest, readDigest, keyId, DIGEST_FORMAT, type DigestBody, type SignedDigest } from './digest.js';
export { DigestChain } from './digest-chain.js';
export { ObjectStore } from './object-store.js';
export { ArchiveIndex, type IndexRow, type IndexedObject, type RecordedObject } from './index-store.js';
export { WriterSchemas } from './writer-schemas.js';
export { verifyArchive, type VerifyReport, type VerifyProblem } from './verify.js';
export { readArchiveObjects, type RestoreOptions } from './archive-reader.js';
export { replayExecution, type ReplaySource, type ReplayOutcome } from './replay.js';
export { reindexArchive, type ReindexResult } from './reindex.js';
export { REPLAY_FORMAT, renderReplay, piiFields, applyRevealed, type ReplayDocument } from './replay-document.js';
