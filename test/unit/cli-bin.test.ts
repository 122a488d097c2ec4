import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { assetPath } from '../../core/paths.js';

// `npx auditline …` (every command in the README) runs the package's bin file itself, not through `node`.
test('the compiled CLI runs as an executable file, the way `npx auditline` starts it', () => {
  const r = spawnSync(assetPath('dist', 'cli', 'main.js'), ['--help'], { encoding: 'utf8' });
  assert.equal(r.error, undefined, `cannot execute dist/cli/main.js: ${r.error?.message}`);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^Usage: auditline /m);
});
