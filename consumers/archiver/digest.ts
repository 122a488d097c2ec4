import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { sha256Hex } from './keys.js';

/** Format tag of a digest file (docs/archiver.md, "Digests"). */
export const DIGEST_FORMAT = 'auditline-archive-digest/1';

/** One archive object as a digest lists it. */
export interface DigestEntry {
  key: string;
  version_id: string | null;
  sha256: string;
  size: number;
  first_offset: string;
  last_offset: string;
}

/** The signed part of a digest. Field order is fixed: the signature covers `JSON.stringify` of exactly this object. */
export interface DigestBody {
  format: typeof DIGEST_FORMAT;
  topic: string;
  partition: number;
  sequence: number;
  /** ISO time the digest was written; the period is (previous.created_at, created_at]. */
  created_at: string;
  period_start: string | null;
  /** Key and SHA-256 (hex) of the whole previous digest file; null for the first of a chain. */
  previous: { key: string; sha256: string } | null;
  objects: DigestEntry[];
}

export interface SignedDigest extends DigestBody {
  signature: { algorithm: 'Ed25519'; key_id: string; value: string };
}

/** First 16 hex digits of the SHA-256 of the public key (SPKI DER): names the key that signed. */
export function keyId(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  return sha256Hex(pub.export({ type: 'spki', format: 'der' })).slice(0, 16);
}

function canonical(body: DigestBody): Buffer {
  const ordered: DigestBody = {
    format: body.format,
    topic: body.topic,
    partition: body.partition,
    sequence: body.sequence,
    created_at: body.created_at,
    period_start: body.period_start,
    previous: body.previous ? { key: body.previous.key, sha256: body.previous.sha256 } : null,
    objects: body.objects.map((o) => ({ key: o.key, version_id: o.version_id, sha256: o.sha256, size: o.size, first_offset: o.first_offset, last_offset: o.last_offset })),
  };
  return Buffer.from(JSON.stringify(ordered), 'utf8');
}

/** The bytes of a digest file: the body and its Ed25519 signature, as one JSON document. */
export function signDigest(body: DigestBody, privateKey: KeyObject): Buffer {
  const value = sign(null, canonical(body), privateKey).toString('base64');
  const signed: SignedDigest = { ...JSON.parse(canonical(body).toString('utf8')), signature: { algorithm: 'Ed25519', key_id: keyId(privateKey), value } };
  return Buffer.from(`${JSON.stringify(signed, null, 1)}\n`, 'utf8');
}

/** Parses a digest file; `valid` tells whether its signature verifies under `publicKey`. Throws on a file that is not a digest. */
export function readDigest(file: Buffer, publicKey: KeyObject): { digest: SignedDigest; valid: boolean } {
  const digest = JSON.parse(file.toString('utf8')) as SignedDigest;
  if (digest.format !== DIGEST_FORMAT || !Array.isArray(digest.objects) || !digest.signature) throw new Error(`not a ${DIGEST_FORMAT} file`);
  let valid = false;
  try {
    valid = digest.signature.algorithm === 'Ed25519' && verify(null, canonical(digest), publicKey, Buffer.from(digest.signature.value, 'base64'));
  } catch {
    valid = false;
  }
  return { digest, valid };
}
