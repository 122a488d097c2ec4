import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { assetPath } from '../../core/paths.js';

// A process that logs and is killed at once (SIGKILL, or the SIGSTOP of a test hook) must not lose the line:
// with pino's default stream the write was still queued in libuv's thread pool, and the hot store's crash test
// waited for a line that never came.
test('a service log line is on stdout before the next statement runs, even when that statement kills the process', async () => {
  const logger = pathToFileURL(assetPath('dist', 'core', 'logger.js')).href;
  const script = `
    const { createLogger } = await import(${JSON.stringify(logger)});
    const log = createLogger('logger-test');
    for (let i = 0; i < 200; i++) log.info({ i }, 'line before the kill');
    log.warn({ last: true }, 'the last line');
    process.kill(process.pid, 'SIGKILL');
  `;
  for (let round = 0; round < 5; round++) {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const signal = await new Promise((resolve) => child.once('close', (_code, sig) => resolve(sig)));
    assert.equal(signal, 'SIGKILL');
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; last?: boolean });
    assert.equal(lines.length, 201, `round ${round}: ${lines.length} of 201 lines reached stdout`);
    assert.deepEqual(lines.at(-1), { ...lines.at(-1), msg: 'the last line', last: true });
  }
});
