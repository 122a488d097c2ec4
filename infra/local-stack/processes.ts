import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import { currentBootId, isProcessAlive, processIdentity, processStartTicks } from '../../core/process-alive.js';
import { AuditlineError, errorMessage } from '../../core/errors.js';

/** Shared with the producer spool (core/process-alive.ts); callers here import it from this module. */
export { processIdentity };

/** What the launcher remembers about a process it started. */
export interface PidRecord {
  pid: number;
  /** Kernel start time of the process (/proc/<pid>/stat field 22): tells our process from a reused pid. */
  startTicks: string | null;
  /** The boot the process was started in (Linux boot_id); absent in records of earlier launchers. */
  bootId?: string | null;
  command: string[];
  logFile: string;
  startedAt: string;
}

/** True unless the recorded process is known to be gone (an unverifiable one counts as running: nothing is started in its place). */
export function isRunning(record: PidRecord): boolean {
  return processIdentity(record) !== 'gone';
}

/**
 * The record of a pid file; undefined when there is none. A file that is not
 * a record the launcher wrote is an error (STACK_PID_FILE_INVALID), never
 * "no record": its process may still run, and starting another or ignoring
 * it would lose track of it.
 */
export function readPidFile(file: string): PidRecord | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw invalidPidFile(file, errorMessage(err), err);
  }
  let parsed: Partial<PidRecord>;
  try {
    parsed = JSON.parse(text) as Partial<PidRecord>;
  } catch (err) {
    throw invalidPidFile(file, 'not JSON', err);
  }
  if (typeof parsed !== 'object' || parsed === null || !Number.isInteger(parsed.pid) || (parsed.pid as number) <= 0) {
    throw invalidPidFile(file, 'no pid in it');
  }
  return parsed as PidRecord;
}

function invalidPidFile(file: string, why: string, cause?: unknown): AuditlineError {
  return new AuditlineError(
    'STACK_PID_FILE_INVALID',
    `${file} is not a pid file the launcher wrote (${why}): check whether the service it was for still runs (stop that process yourself if so), then delete the file`,
    { ...(cause ? { cause } : {}), details: { file } },
  );
}

/** Writes a pid file whole or not at all (a temporary file renamed over it). */
export function writePidFile(file: string, record: PidRecord): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, JSON.stringify(record, null, 2));
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/**
 * Starts a command detached in its own process group, output appended to
 * `logFile`, and records it in `pidFile`. A command that cannot be run (a
 * missing or non-executable file) rejects with the path and `hint`, instead
 * of an unhandled 'error' event that ends the whole launcher.
 */
export async function startDetached(opts: {
  command: string;
  args: string[];
  cwd: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
  pidFile: string;
  /** What to do when the command cannot be run (which setting to fix, which cache folder to delete). */
  hint?: string;
  /** Called with how the process ended, should it end while this launcher still runs. */
  onExit?: (how: string) => void;
}): Promise<PidRecord> {
  mkdirSync(path.dirname(opts.logFile), { recursive: true });
  mkdirSync(opts.cwd, { recursive: true });
  const fd = openSync(opts.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(opts.command, opts.args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const failed = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', resolve);
  });
  // Later errors (a failed signal) must not end the launcher either.
  child.on('error', () => undefined);
  child.once('exit', (code, signal) => opts.onExit?.(signal ? `killed by ${signal}` : `exit code ${code}`));
  if (failed !== undefined || child.pid === undefined) {
    throw new AuditlineError('STACK_START_FAILED', `cannot run ${opts.command}: ${failed?.message ?? 'no process was created'}${opts.hint ? `; ${opts.hint}` : ''}`, {
      ...(failed ? { cause: failed } : {}),
    });
  }
  const record: PidRecord = {
    pid: child.pid,
    startTicks: processStartTicks(child.pid),
    bootId: currentBootId(),
    command: [opts.command, ...opts.args],
    logFile: opts.logFile,
    startedAt: new Date().toISOString(),
  };
  try {
    writePidFile(opts.pidFile, record);
  } catch (err) {
    // Unrecorded, it would run on untracked, later taken for a foreign process on its port.
    signalGroup(child.pid, 'SIGTERM');
    throw new AuditlineError('STACK_START_FAILED', `could not record pid ${child.pid} in ${opts.pidFile} (${errorMessage(err)}); the process was stopped`, { cause: err });
  }
  child.unref();
  return record;
}

/**
 * Stops a recorded process group: SIGTERM, then SIGKILL after `graceMs`.
 * Only the group of the recorded pid is signalled, and only if the pid
 * provably still belongs to the process that was started: 'unverifiable'
 * when that cannot be checked (nothing is signalled).
 */
export async function stopRecorded(record: PidRecord, graceMs = 20_000): Promise<'stopped' | 'killed' | 'not-running' | 'unverifiable'> {
  const identity = processIdentity(record);
  if (identity === 'gone') return 'not-running';
  if (identity === 'unverifiable') return 'unverifiable';
  signalGroup(record.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(record.pid) && !groupAlive(record.pid)) return 'stopped';
    await sleep(200);
  }
  signalGroup(record.pid, 'SIGKILL');
  for (let i = 0; i < 50 && (isProcessAlive(record.pid) || groupAlive(record.pid)); i++) await sleep(100);
  return 'killed';
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

export function removeFile(file: string): void {
  rmSync(file, { force: true });
}

/** Last `lines` lines of a log file (or a note that it is empty/missing). */
export function tailFile(file: string, lines = 25): string {
  if (!existsSync(file) || statSync(file).size === 0) return `(log ${file} is empty)`;
  const text = readFileSync(file, 'utf8');
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
export function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    const done = (inUse: boolean) => {
      socket.destroy();
      resolve(inUse);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
