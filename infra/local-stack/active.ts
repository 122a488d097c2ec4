import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { isRunning, readPidFile } from './processes.js';

/**
 * The local stack listens on fixed ports, so one runs per machine at a time,
 * whichever clone started it. Its data and its generated secrets live in
 * that clone's stack directory: another clone of the project must use that
 * directory too, or it would make up keys of its own (tokens and reveals
 * that do not match the data, signatures that do not verify) and report the
 * running services as stopped. `stack up` records its directory in the
 * shared cache; a clone whose own directory runs nothing follows the record
 * while a service recorded there still runs.
 */
const RECORD = 'active-stack.json';

/** True when a pid file of `stackDir` names a process that still runs. */
export function runsServices(stackDir: string): boolean {
  const run = path.join(stackDir, 'run');
  if (!existsSync(run)) return false;
  return readdirSync(run)
    .filter((f) => f.endsWith('.pid'))
    .some((f) => {
      const record = readPidFile(path.join(run, f));
      return record !== undefined && isRunning(record);
    });
}

/** Notes `stackDir` as the machine's running stack (after `stack up`). */
export function recordActiveStack(cacheDir: string, stackDir: string): void {
  mkdirSync(cacheDir, { recursive: true });
  writeFileSync(path.join(cacheDir, RECORD), `${JSON.stringify({ stackDir })}\n`);
}

/** Forgets the record when it names `stackDir` and nothing of it runs any more (after `stack down`). */
export function clearActiveStack(cacheDir: string, stackDir: string): void {
  if (activeStackDir(cacheDir) === stackDir && !runsServices(stackDir)) rmSync(path.join(cacheDir, RECORD), { force: true });
}

/** The recorded stack directory, if any. */
function activeStackDir(cacheDir: string): string | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path.join(cacheDir, RECORD), 'utf8')) as { stackDir?: unknown };
    return typeof parsed.stackDir === 'string' ? parsed.stackDir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The stack directory to use when none is configured: the project's own,
 * unless it runs nothing and the recorded one (another clone's) still runs
 * a service.
 */
export function resolveStackDir(ownDir: string, cacheDir: string): string {
  const active = activeStackDir(cacheDir);
  if (active === undefined || active === ownDir || runsServices(ownDir) || !runsServices(active)) return ownDir;
  return active;
}
