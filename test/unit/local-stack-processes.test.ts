import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readPidFile, startDetached } from '../../infra/local-stack/processes.js';
import { tempDir } from '../helpers/temp-dir.js';
import { withLock } from '../../infra/local-stack/lock.js';
import { currentBootId, isProcessAlive, processStartTicks } from '../../core/process-alive.js';
import { loadStackSettings } from '../../infra/local-stack/settings.js';
import { stackDown } from '../../infra/local-stack/stack.js';


/** Pids of live processes whose command line is exactly `argv` (found through /proc, so no pid has to be known). */
function pidsRunning(argv: string[]): number[] {
  const wanted = `${argv.join('\0')}\0`;
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8') === wanted && !readFileSync(`/proc/${d}/stat`, 'utf8').includes(') Z ');
      } catch {
        return false;
      }
    })
    .map(Number);
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) if (check()) return true;
  return check();
}

test('a process whose pid file cannot be written is stopped, not left running untracked', async (t) => {
  const root = tempDir('auditline-processes');
  const argv = ['sleep', `${3000 + (process.pid % 1000)}.25`]; // a command line no other process has
  t.after(() => pidsRunning(argv).forEach((pid) => process.kill(pid, 'SIGKILL'))); // never left behind, even when the test fails
  const failure = await Promise.resolve()
    .then(() => startDetached({ command: argv[0]!, args: argv.slice(1), cwd: root, logFile: path.join(root, 'log'), pidFile: path.join(root, 'missing', 'dir', 'x.pid') }))
    .then(() => undefined, (err: Error) => err);
  assert.ok(await until(() => pidsRunning(argv).length === 0), 'the started process is gone');
  assert.match(String(failure?.message), /could not record pid \d+ in .*x\.pid .*the process was stopped/);
});

test('a pid file is written whole; one that cannot be read as a record is an error naming it, not "no record"', async (t) => {
  const root = tempDir('auditline-processes');
  const pidFile = path.join(root, 'x.pid');
  const record = await startDetached({ command: 'sleep', args: ['30'], cwd: root, logFile: path.join(root, 'log'), pidFile });
  t.after(() => process.kill(-record.pid, 'SIGKILL'));
  assert.deepEqual(readPidFile(pidFile), record);
  assert.deepEqual(readdirSync(root).sort(), ['log', 'x.pid'], 'no temporary file is left');

  assert.equal(readPidFile(path.join(root, 'none.pid')), undefined, 'no file: no record');
  for (const text of ['', '{"pid": 12', '{"command": []}', '{"pid": -1}']) {
    writeFileSync(pidFile, text);
    assert.throws(() => readPidFile(pidFile), (err: Error & { code?: string }) => err.code === 'STACK_PID_FILE_INVALID' && err.message.includes(pidFile), JSON.stringify(text));
  }
});

test('stack down never signals a pid whose identity cannot be checked (start time unknown, or recorded in another boot)', async (t) => {
  const stackDir = tempDir('auditline-processes');
  const settings = loadStackSettings({ AUDITLINE_STACK_DIR: stackDir, AUDITLINE_CACHE_DIR: tempDir('auditline-processes-cache'), AUDITLINE_STACK_S3_PORT: '29407' });
  const unrelated = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
  t.after(() => unrelated.kill('SIGKILL'));
  const pid = unrelated.pid!;
  const ticks = processStartTicks(pid);
  assert.ok(ticks !== null && currentBootId() !== null, 'this test needs /proc');
  mkdirSync(path.join(stackDir, 'run'), { recursive: true });
  const records = [
    { startTicks: null }, // an older launcher could not read the start time
    { startTicks: ticks, bootId: 'another-boot-0000' }, // same start time by chance, but another boot: not our process
  ];
  for (const extra of records) {
    writeFileSync(path.join(stackDir, 'run', 's3.pid'), JSON.stringify({ pid, command: ['moto_server'], logFile: '', startedAt: '', ...extra }));
    const said: string[] = [];
    await stackDown(settings, (m) => said.push(m), ['s3']);
    await new Promise((r) => setTimeout(r, 300)); // a signal, had one been sent, has arrived
    assert.deepEqual([unrelated.signalCode, isProcessAlive(pid)], [null, true], `${JSON.stringify(extra)}: the unrelated process still runs`);
    assert.doesNotMatch(said.join('\n'), /stopped|killed/);
  }
});

test('withLock: holders never overlap, and a lock left by a process that is gone is taken over', async () => {
  const file = path.join(tempDir('auditline-lock'), 'up.lock');
  const events: string[] = [];
  const holder = (name: string) => withLock(file, () => events.push(`${name} waits`), async () => {
    events.push(`${name} in`);
    await new Promise((r) => setTimeout(r, 200));
    events.push(`${name} out`);
  });
  await Promise.all([holder('a'), holder('b')]);
  assert.deepEqual(events, ['a in', 'b waits', 'a out', 'b in', 'b out']);

  writeFileSync(file, JSON.stringify({ pid: 2 ** 22 + 7, startTicks: '1', command: [], logFile: '', startedAt: '' }));
  const waited: number[] = [];
  assert.equal(await withLock(file, (pid) => waited.push(pid), async () => 'ran'), 'ran');
  assert.deepEqual(waited, [], 'a dead holder is not waited for');
});
