import { createHash, createSecretKey, type KeyObject } from 'node:crypto';
import { AuditlineError } from '../../core/errors.js';
import { open, seal } from './crypto.js';

/**
 * Envelope encryption of data encryption keys (DEKs) by a master key. The
 * local implementation holds the master key in memory; a cloud KMS (AWS KMS
 * Encrypt/Decrypt with an encryption context, GCP KMS, Vault transit)
 * implements the same three members, and the master key never leaves it.
 */
export interface KeyWrapper {
  /** Id of the wrapping key, stored next to every wrapped DEK (e.g. a KMS key ARN or a fingerprint). */
  readonly keyId: string;
  /** Wraps a DEK; `context` (subject and key id) is bound to the result and must be given again to unwrap. */
  wrap(dek: Buffer, context: string): Promise<Buffer>;
  /** Unwraps a DEK wrapped by {@link wrap} with the same context. Throws PII_DECRYPT_FAILED when it does not authenticate. */
  unwrap(wrapped: Buffer, context: string): Promise<Buffer>;
}

/**
 * KeyWrapper with a 32-byte master key from configuration: AES-256-GCM,
 * context as associated data. Its id is `local:` + the first 16 hex digits
 * of SHA-256 of the key (a fingerprint, not the key).
 */
export class LocalKeyWrapper implements KeyWrapper {
  readonly keyId: string;
  private readonly key: KeyObject;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new AuditlineError('CONFIG_INVALID', 'the master key must be 32 bytes');
    this.key = createSecretKey(masterKey);
    this.keyId = `local:${createHash('sha256').update(masterKey).digest('hex').slice(0, 16)}`;
  }

  async wrap(dek: Buffer, context: string): Promise<Buffer> {
    return Buffer.from(seal(this.key, dek, contextAad(context)), 'base64');
  }

  async unwrap(wrapped: Buffer, context: string): Promise<Buffer> {
    return open(this.key, wrapped.toString('base64'), contextAad(context));
  }
}

function contextAad(context: string): Buffer {
  return Buffer.from(`auditline-dek/v1/${context}`, 'utf8');
}
