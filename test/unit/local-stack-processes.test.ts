import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readPidFile, startDetached } from '../../infra/local-stack/processes.js';
import { tempDir } from '../helpers/temp-dir.js';


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
