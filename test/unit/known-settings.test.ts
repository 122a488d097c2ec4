import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KNOWN_SETTINGS, unknownSettings, unknownSettingWarning } from '../../cli/known-settings.js';
import { assetPath, packageRoot } from '../../core/paths.js';

/** Source, build and documentation files of the project (not its build output, dependencies or fixtures). */
function projectFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    // This file spells settings wrong on purpose.
    if (['node_modules', 'dist', '.git', 'fixtures', '.auditline', 'known-settings.test.ts'].includes(entry.name)) continue;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...projectFiles(file));
    else if (/\.(ts|mjs|js|md|ya?ml|sh)$|^Dockerfile$|^run$/.test(entry.name)) out.push(file);
  }
  return out;
}

test('every AUDITLINE_ name in the docs and the code is a known setting: the registry cannot fall behind', () => {
  const files = projectFiles(packageRoot);
  assert.ok(files.some((f) => f.endsWith(path.join('docs', 'configuration.md'))), 'the docs are scanned');
  const missing = new Set<string>();
  for (const file of files) {
    // A name ending in _ is a prefix (AUDITLINE_TOKENIZER_, AUDITLINE_<SERVICE>_…), not a setting.
    for (const [name] of readFileSync(file, 'utf8').matchAll(/\bAUDITLINE_[A-Z0-9_]*[A-Z0-9]\b/g)) {
      if (!KNOWN_SETTINGS.has(name)) missing.add(`${name} (${path.relative(packageRoot, file)})`);
    }
  }
  assert.deepEqual([...missing], []);
});

test('a misspelt AUDITLINE_ variable is named with the closest known setting, never with its value', () => {
  const env = { AUDITLINE_KAFKA_SASL_MECHANISMS: 'scram-sha-512', AUDITLINE_HOTSTORE_BATCHSIZE: '777', AUDITLINE_KAFKA_BROKERS: 'k:9092', AUDITLINE_STACK_DIR: '/tmp/s', HOME: '/home/x' };
  const unknown = unknownSettings(env);
  assert.deepEqual(unknown, [
    { name: 'AUDITLINE_HOTSTORE_BATCHSIZE', closest: 'AUDITLINE_HOTSTORE_BATCH_SIZE' },
    { name: 'AUDITLINE_KAFKA_SASL_MECHANISMS', closest: 'AUDITLINE_KAFKA_SASL_MECHANISM' },
  ]);
  const line = unknownSettingWarning(unknown[1]!);
  assert.match(line, /AUDITLINE_KAFKA_SASL_MECHANISMS .*ignored.*AUDITLINE_KAFKA_SASL_MECHANISM\b/);
  assert.ok(!line.includes('scram'), 'the value is never shown');
});

test('the CLI warns about a misspelt AUDITLINE_ variable on stderr at start, with the closest name', (t) => {
  const stackDir = mkdtempSync(path.join(os.tmpdir(), 'auditline-unknown-'));
  t.after(() => rmSync(stackDir, { recursive: true, force: true }));
  const env = { ...process.env, AUDITLINE_STACK_DIR: stackDir, AUDITLINE_HOTSTORE_BATCHSIZE: '777' };
  // A command that stops on a bad option of its own, after start, before connecting anywhere.
  const r = spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'query', 'failed', '--workflow', 'WF-1', '--since', 'yesterday'], { encoding: 'utf8', env });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /warning: .*AUDITLINE_HOTSTORE_BATCHSIZE.*AUDITLINE_HOTSTORE_BATCH_SIZE/);
  assert.ok(!r.stderr.includes('777'));
});
