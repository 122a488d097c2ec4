import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clearActiveStack, recordActiveStack, resolveStackDir, runsServices } from '../../infra/local-stack/active.js';
import { processStartTicks } from '../../core/process-alive.js';

test('a clone whose own stack directory runs nothing follows the stack another clone runs, and only while it runs', (t) => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'auditline-active-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const cache = path.join(root, 'cache');
  const first = path.join(root, 'clone-1', '.auditline', 'stack');
  const second = path.join(root, 'clone-2', '.auditline', 'stack');
  const runs = (dir: string, pid: number) => {
    mkdirSync(path.join(dir, 'run'), { recursive: true });
    writeFileSync(path.join(dir, 'run', 'kafka.pid'), JSON.stringify({ pid, startTicks: processStartTicks(pid), command: ['x'], logFile: 'x', startedAt: '' }));
  };

  assert.equal(resolveStackDir(second, cache), second, 'nothing recorded: its own');
  runs(first, process.pid); // this test's own process stands in for a running service
  recordActiveStack(cache, first);
  assert.equal(runsServices(first), true);
  assert.equal(resolveStackDir(second, cache), first, 'the running stack of the first clone');
  assert.equal(resolveStackDir(first, cache), first);

  runs(second, process.pid);
  assert.equal(resolveStackDir(second, cache), second, 'a clone that runs its own stack keeps it');
  rmSync(path.join(second, 'run'), { recursive: true });

  // The recorded stack stopped (a reboot, a kill): its pid file names a process that is gone.
  runs(first, 2 ** 22 + 12_345);
  assert.equal(runsServices(first), false);
  assert.equal(resolveStackDir(second, cache), second, 'a stopped stack is not followed');
  clearActiveStack(cache, second);
  assert.equal(existsSync(path.join(cache, 'active-stack.json')), true, 'only the recorded directory clears the record');
  clearActiveStack(cache, first);
  assert.equal(existsSync(path.join(cache, 'active-stack.json')), false);
});
