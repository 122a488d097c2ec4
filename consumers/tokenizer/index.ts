/** Public entry of the tokenizer: the service, its configuration, and the reveal, erasure and key APIs the CLI (and `query inputs --reveal`) use. */
export { runTokenizer } from './main.js';
export { TokenizerService } from './service.js';
export { loadTokenizerConfig, loadKeyMaterial, loadMasterKey, loadTokenKey, loadRevealPolicy, loadRevealAuth, loadPreviousMasterKeys, loadTokenizerKafkaNames, TOKENIZER_DEFAULTS, DEFAULT_PII_FIELDS, type TokenizerConfig, type KeyMaterial } from './config.js';
export { TOKENIZER_METRICS } from './metrics.js';
export { isTokenized, TOKENIZED_HEADER } from './handler.js';
export { TokenKey, normalizeForToken } from './crypto.js';
export { LocalKeyWrapper, type KeyWrapper } from './key-wrapper.js';
export { SubjectKeyStore, type SubjectKey } from './key-store.js';
export { ExecutionSubjects } from './execution-subjects.js';
export { TokenizerAuditLog, maskPiiInText, type AccessRecord, type ErasureRecord } from './audit-log.js';
export { reveal, decideReveal, parseRevealPolicy, DEFAULT_REVEAL_POLICY, MIN_REASON_LENGTH, type RevealPolicy, type RevealRequest, type RevealResult, type RevealDeps } from './reveal.js';
export { loadStoredExecution, storedStatus, type RevealScope, type StoredExecution } from './reveal-source.js';
export { eraseSubjects, expireKeys, setLegalHold, heldSubjects, subjectIdsOf, type ErasureDeps, type ErasureResult, type ExpiryResult, type SubjectSelector } from './erasure.js';
export { subjectId } from './tokenize-event.js';
export { TOKENIZER_TABLES } from './clickhouse.js';
export type { PiiToken } from './pii-format.js';
export { holdsTokenMark, TOKEN_MARKS } from './pii-format.js';
export { loadPrincipalDirectory, identifyRevealCaller, callerRefusal, tokenDigest, type PrincipalDirectory, type RevealCaller } from './principals.js';
