import { openSync, readFileSync, rmSync, statSync, writeSync, closeSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { currentBootId, processStartTicks } from '../../core/process-alive.js';
import { processIdentity, sleep, type PidRecord } from './processes.js';

/**
 * Runs `fn` holding an exclusive lock file (created with O_EXCL, holding the
 * holder's pid, start time and boot id), so that two `stack up` on one stack
 * directory, or two downloads into one cache folder, never interleave. A
 * lock whose holder is gone (a killed launcher) is taken over; one held by a
 * live process is waited for, `waiting` says by whom.
 */
export async function withLock<T>(file: string, waiting: (holder: number) => void, fn: () => Promise<T>): Promise<T> {
  mkdirSync(path.dirname(file), { recursive: true });
  let told = false;
  for (;;) {
    const holder = tryAcquire(file);
    if (holder === undefined) break;
    if (!told) {
      waiting(holder);
      told = true;
    }
    await sleep(250);
  }
  try {
    return await fn();
  } finally {
    rmSync(file, { force: true });
  }
}

/** Takes the lock (undefined) or returns the pid holding it. */
function tryAcquire(file: string): number | undefined {
  const me: PidRecord = { pid: process.pid, startTicks: processStartTicks(process.pid), bootId: currentBootId(), command: process.argv, logFile: '', startedAt: new Date().toISOString() };
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const holder = readHolder(file);
    // A holder that is gone, or a file left half-written long ago, no longer locks anything.
    if (holder === undefined ? Date.now() - mtime(file) > 10_000 : processIdentity(holder) === 'gone') {
      rmSync(file, { force: true });
      return tryAcquire(file);
    }
    return holder?.pid ?? 0;
  }
  try {
    writeSync(fd, JSON.stringify(me));
  } finally {
    closeSync(fd);
  }
  return undefined;
}

function readHolder(file: string): PidRecord | undefined {
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as PidRecord;
    return Number.isInteger(parsed.pid) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}
