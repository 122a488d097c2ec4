import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadEndpoints } from '../../core/endpoints.js';
import { loadStackSettings } from './settings.js';

/**
 * Secrets the services need that a local stack can make up: generated once
 * into `<stack dir>/secrets/` (mode 0600) and handed to every command as
 * `<VAR>_FILE`, so `auditline run tokenizer`, `reveal`, `demo` and the
 * pipeline agree without any setup. Only when no AUDITLINE_* endpoint is
 * configured (the local stack is in use) and the variable is not set
 * already: a real deployment never runs on made-up keys.
 */
export interface LocalSecret {
  /** The setting; `<variable>_FILE` is what gets set, or the variable itself when `as` is 'value'. */
  variable: string;
  file: string;
  /** The secret's text; `dir` holds the secrets generated before it (a public key derives from its private key). */
  generate(dir: string): string;
  /** 'value' for settings without a _FILE form (alert channel secrets named in channels.yaml). @default 'file' */
  as?: 'file' | 'value';
}

const base64Key = (bytes: number) => () => `${randomBytes(bytes).toString('base64')}\n`;
const ARCHIVER_SIGNING_FILE = 'archiver-signing-key.pem';

/** Every service's generated local secret, in generation order; a service that needs one adds a line. */
export const LOCAL_SECRETS: readonly LocalSecret[] = [
  { variable: 'AUDITLINE_TOKENIZER_MASTER_KEY', file: 'tokenizer-master.key', generate: base64Key(32) },
  { variable: 'AUDITLINE_TOKENIZER_TOKEN_KEY', file: 'tokenizer-token.key', generate: base64Key(32) },
  {
    variable: 'AUDITLINE_ARCHIVER_SIGNING_KEY',
    file: ARCHIVER_SIGNING_FILE,
    generate: () => generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  },
  {
    variable: 'AUDITLINE_ARCHIVER_PUBLIC_KEY',
    file: 'archiver-public-key.pem',
    generate: (dir) => createPublicKey(createPrivateKey(readFileSync(path.join(dir, ARCHIVER_SIGNING_FILE), 'utf8'))).export({ type: 'spki', format: 'pem' }).toString(),
  },
  // The channels of infra/alerts/channels.yaml; `auditline pipeline` points them at its local webhook sink.
  { variable: 'AUDITLINE_ALERTS_SECURITY_WEBHOOK_SECRET', file: 'alerts-security-webhook.secret', generate: base64Key(32), as: 'value' },
  { variable: 'AUDITLINE_ALERTS_COMPLIANCE_WEBHOOK_SECRET', file: 'alerts-compliance-webhook.secret', generate: base64Key(32), as: 'value' },
];

/** The directory local secrets live in. */
export function localSecretsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(loadStackSettings(env).stackDir, 'secrets');
}

/**
 * Sets `<VAR>_FILE` (or `<VAR>`) in `env` for every local secret neither it
 * nor its `_FILE` form is set, creating missing files. Returns the variables
 * it set; none when endpoints are configured.
 */
export function applyLocalSecrets(env: NodeJS.ProcessEnv = process.env, secrets: readonly LocalSecret[] = LOCAL_SECRETS): string[] {
  let local: boolean;
  try {
    local = loadEndpoints(env).usesLocalStack;
  } catch {
    return []; // an invalid endpoint setting is reported by the command that needs it
  }
  if (!local) return [];
  const dir = localSecretsDir(env);
  const applied: string[] = [];
  for (const secret of secrets) {
    const fileVar = `${secret.variable}_FILE`;
    // Present at all, even empty, means the caller decided: an empty value must fail as missing, not be replaced.
    if (secret.variable in env || fileVar in env) continue;
    const file = path.join(dir, secret.file);
    if (!existsSync(file) || readFileSync(file, 'utf8').trim() === '') {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      // 'wx' never replaces a key another process wrote meanwhile: tokens and ciphertext depend on it.
      try {
        writeFileSync(file, secret.generate(dir), { mode: 0o600, flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (secret.as === 'value') {
      env[secret.variable] = readFileSync(file, 'utf8').trim();
      applied.push(secret.variable);
    } else {
      env[fileVar] = file;
      applied.push(fileVar);
    }
  }
  return applied;
}
