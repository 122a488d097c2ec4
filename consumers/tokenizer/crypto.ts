import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { AuditlineError } from '../../core/errors.js';
import { canonicalJson } from '../../core/pii/canonical-json.js';
import { EMAIL_EXACT, isPhoneNumber, phoneDigits } from '../../core/pii/detectors.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Bytes of a data encryption key (AES-256). */
export const DEK_BYTES = 32;

/**
 * The tokenization key: deterministic keyed tokens (HMAC-SHA256) of PII
 * values and of data-subject identifiers. The same value always gives the
 * same token, so equality search works on tokens; without the key a token
 * cannot be computed or reversed. The key is imported once as a KeyObject
 * (no per-call key setup beyond HMAC's own).
 */
export class TokenKey {
  private readonly key: KeyObject;

  constructor(secret: Buffer) {
    this.key = createSecretKey(secret);
  }

  /** Token of a PII value (normalized, see {@link normalizeForToken}): 43 characters of base64url. */
  token(value: unknown): string {
    return this.mac(`v\0${normalizeForToken(value)}`);
  }

  /** Token of a data subject id such as `email:ann@example.com` or `id:C-42`; the key store is keyed by it. */
  subject(subjectId: string): string {
    return this.mac(`s\0${subjectId}`);
  }

  private mac(text: string): string {
    return createHmac('sha256', this.key).update(text, 'utf8').digest('base64url');
  }
}

/**
 * The form of a value that is tokenized: e-mail addresses trimmed and
 * lower-cased, phone numbers reduced to their digits (and leading `+`),
 * other strings trimmed (Unicode NFC), other values as canonical JSON
 * (sorted keys). So `Ann@Example.com ` and `ann@example.com` share a token.
 */
export function normalizeForToken(value: unknown): string {
  if (typeof value === 'string') {
    const v = value.normalize('NFC').trim();
    if (EMAIL_EXACT.test(v)) return `e:${v.toLowerCase()}`;
    if (isPhoneNumber(v)) return `p:${phoneDigits(v)}`;
    return `s:${v}`;
  }
  return `j:${canonicalJson(value)}`;
}

/** Associated data of a PII ciphertext: binds it to its key id and execution, so it cannot be moved elsewhere. */
export function piiAad(keyId: string, executionId: string): Buffer {
  return Buffer.from(`auditline-pii/v1/${keyId}/${executionId}`, 'utf8');
}

/**
 * Random IVs drawn from the CSPRNG in bulk: one `randomBytes` call per 512
 * IVs instead of one per encryption (the per-call cost dominated a 12-byte
 * draw on the tokenizer's hot path). Every IV is still fresh random bytes
 * used once; a used slice is never handed out again.
 */
class IvPool {
  private pool = Buffer.alloc(0);
  private at = 0;

  next(): Buffer {
    if (this.at + IV_BYTES > this.pool.length) {
      this.pool = randomBytes(IV_BYTES * 512);
      this.at = 0;
    }
    const iv = this.pool.subarray(this.at, this.at + IV_BYTES);
    this.at += IV_BYTES;
    return iv;
  }
}
const ivs = new IvPool();

/**
 * AES-256-GCM of `plaintext` under `key`: base64 of iv (12 random bytes) ||
 * ciphertext || tag (16 bytes). One call encrypts all PII values of one
 * subject in one field (a JSON array), see docs/tokenizer.md.
 */
export function seal(key: KeyObject, plaintext: Buffer, aad: Buffer): string {
  const iv = ivs.next();
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  cipher.final();
  return Buffer.concat([iv, body, cipher.getAuthTag()], IV_BYTES + body.length + TAG_BYTES).toString('base64');
}

/** Reverses {@link seal}. Throws PII_DECRYPT_FAILED when the ciphertext, key or associated data do not match (tampering). */
export function open(key: KeyObject, sealed: string, aad: Buffer): Buffer {
  const raw = Buffer.from(sealed, 'base64');
  if (raw.length < IV_BYTES + TAG_BYTES) throw new AuditlineError('PII_DECRYPT_FAILED', 'ciphertext is too short');
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES));
    decipher.setAAD(aad);
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]);
  } catch (err) {
    throw new AuditlineError('PII_DECRYPT_FAILED', 'ciphertext failed authentication (tampered, or another key or context)', { cause: err });
  }
}

/** Encrypts the PII values of one bundle (JSON array). */
export function sealValues(key: KeyObject, values: readonly unknown[], aad: Buffer): string {
  return seal(key, Buffer.from(JSON.stringify(values), 'utf8'), aad);
}

/** Decrypts a bundle written by {@link sealValues}. */
export function openValues(key: KeyObject, sealed: string, aad: Buffer): unknown[] {
  const parsed = JSON.parse(open(key, sealed, aad).toString('utf8')) as unknown;
  if (!Array.isArray(parsed)) throw new AuditlineError('PII_DECRYPT_FAILED', 'decrypted bundle is not an array');
  return parsed;
}

/** A fresh random data encryption key. */
export function newDataKey(): Buffer {
  return randomBytes(DEK_BYTES);
}

/** A fresh key id: `k` + 16 characters of base64url (96 random bits). */
export function newKeyId(): string {
  return `k${randomBytes(12).toString('base64url')}`;
}
