import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clearActiveStack, recordActiveStack, resolveStackDir, runsServices } from '../../infra/local-stack/active.js';
import { processStartTicks } from '../../core/process-alive.js';
import { DEFAULT_STACK_PORTS } from '../../infra/local-stack/settings.js';

const ports = DEFAULT_STACK_PORTS;

/** A temporary root (removed after the test) and a pid-file writer standing in for a running service. */
function scene(t: { after(fn: () => void): void }) {
  const root = mkdtempSync(path.join(os.tmpdir(), 'auditline-active-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const runs = (dir: string, pid: number) => {
    mkdirSync(path.join(dir, 'run'), { recursive: true });
    writeFileSync(path.join(dir, 'run', 'kafka.pid'), JSON.stringify({ pid, startTicks: processStartTicks(pid), command: ['x'], logFile: 'x', startedAt: '' }));
  };
  return { cache: path.join(root, 'cache'), clone: (n: number) => path.join(root, `clone-${n}`, '.auditline', 'stack'), root, runs };
}

test('a clone whose own stack directory runs nothing follows the stack another clone runs, and only while it runs', (t) => {
  const { cache, clone, runs } = scene(t);
  const first = clone(1);
  const second = clone(2);

  assert.equal(resolveStackDir(second, cache, ports), second, 'nothing recorded: its own');
  runs(first, process.pid); // this test's own process stands in for a running service
  recordActiveStack(cache, first, ports, ports);
  assert.equal(runsServices(first), true);
  assert.equal(resolveStackDir(second, cache, ports), first, 'the running stack of the first clone');
  assert.equal(resolveStackDir(first, cache, ports), first);

  runs(second, process.pid);
  assert.equal(resolveStackDir(second, cache, ports), second, 'a clone that runs its own stack keeps it');
  rmSync(path.join(second, 'run'), { recursive: true });

  // The recorded stack stopped (a reboot, a kill): its pid file names a process that is gone.
  runs(first, 2 ** 22 + 12_345);
  assert.equal(runsServices(first), false);
  assert.equal(resolveStackDir(second, cache, ports), second, 'a stopped stack is not followed');
  clearActiveStack(cache, second);
  assert.equal(existsSync(path.join(cache, 'active-stack.json')), true, 'only the recorded directory clears the record');
  clearActiveStack(cache, first);
  assert.equal(existsSync(path.join(cache, 'active-stack.json')), false);
});

test('a stack on ports of its own neither replaces nor clears the record, and a record is followed only on its ports', (t) => {
  const { cache, clone, root, runs } = scene(t);
  const shared = clone(1);
  const other = clone(2);
  const privateDir = path.join(root, 'private');
  runs(shared, process.pid);
  assert.equal(recordActiveStack(cache, shared, ports, ports), true);
  const record = readFileSync(path.join(cache, 'active-stack.json'), 'utf8');

  const privatePorts = { ...ports, s3: 29_400 };
  assert.equal(recordActiveStack(cache, privateDir, privatePorts, ports), false, 'a private stack is not the machine\'s stack');
  assert.equal(readFileSync(path.join(cache, 'active-stack.json'), 'utf8'), record, 'the record is unchanged');
  clearActiveStack(cache, privateDir);
  assert.equal(readFileSync(path.join(cache, 'active-stack.json'), 'utf8'), record, 'its down does not clear the record');
  assert.equal(resolveStackDir(other, cache, ports), shared, 'another clone on the default ports still follows the running stack');
  assert.equal(resolveStackDir(other, cache, privatePorts), other, 'settings on other ports never follow a record of the default ports');

  // A record written before ports were recorded may name a private stack: not followed.
  writeFileSync(path.join(cache, 'active-stack.json'), JSON.stringify({ stackDir: shared }));
  assert.equal(resolveStackDir(other, cache, ports), other);
});
