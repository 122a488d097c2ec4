import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { applyLocalSecrets, LOCAL_SECRETS } from '../../infra/local-stack/secrets.js';
import { tempDir } from '../helpers/temp-dir.js';

test('local secrets are generated once, 0600, and handed over as <VAR>_FILE', () => {
  const stackDir = tempDir('auditline-secrets');
  const env: NodeJS.ProcessEnv = { AUDITLINE_STACK_DIR: stackDir };
  const applied = applyLocalSecrets(env);
  assert.deepEqual(applied, LOCAL_SECRETS.map((s) => (s.as === 'value' ? s.variable : `${s.variable}_FILE`)));
  const master = env.AUDITLINE_TOKENIZER_MASTER_KEY_FILE!;
  assert.equal(path.dirname(master), path.join(stackDir, 'secrets'));
  assert.equal(Buffer.from(readFileSync(master, 'utf8').trim(), 'base64').length, 32);
  assert.equal(statSync(master).mode & 0o777, 0o600);
  assert.notEqual(readFileSync(master, 'utf8'), readFileSync(env.AUDITLINE_TOKENIZER_TOKEN_KEY_FILE!, 'utf8'));

  // The archiver's public key belongs to its signing key.
  const signed = sign(null, Buffer.from('digest'), readFileSync(env.AUDITLINE_ARCHIVER_SIGNING_KEY_FILE!, 'utf8'));
  assert.ok(verify(null, Buffer.from('digest'), readFileSync(env.AUDITLINE_ARCHIVER_PUBLIC_KEY_FILE!, 'utf8'), signed));
  assert.equal(Buffer.from(env.AUDITLINE_ALERTS_SECURITY_WEBHOOK_SECRET!, 'base64').length, 32);

  // A second command gets the same keys: tokens and ciphertext depend on them.
  const again: NodeJS.ProcessEnv = { AUDITLINE_STACK_DIR: stackDir };
  applyLocalSecrets(again);
  assert.equal(readFileSync(again.AUDITLINE_TOKENIZER_MASTER_KEY_FILE!, 'utf8'), readFileSync(master, 'utf8'));
});

test('local secrets are left alone when a key is configured or real endpoints are set', () => {
  const stackDir = tempDir('auditline-secrets');
  const configured: NodeJS.ProcessEnv = { AUDITLINE_STACK_DIR: stackDir, AUDITLINE_TOKENIZER_MASTER_KEY: 'x' };
  assert.ok(!applyLocalSecrets(configured).includes('AUDITLINE_TOKENIZER_MASTER_KEY_FILE'));
  assert.equal(configured.AUDITLINE_TOKENIZER_MASTER_KEY_FILE, undefined);

  const remote: NodeJS.ProcessEnv = { AUDITLINE_STACK_DIR: stackDir, AUDITLINE_KAFKA_BROKERS: 'kafka.internal:9092' };
  assert.deepEqual(applyLocalSecrets(remote), []);
  assert.equal(remote.AUDITLINE_TOKENIZER_MASTER_KEY_FILE, undefined);
});
