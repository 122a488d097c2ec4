import { readFileSync } from 'node:fs';

/**
 * True when a process with this pid exists (signal 0 probes without
 * signalling; EPERM means it exists but belongs to another user).
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Start time of a live process (/proc/<pid>/stat field 22, clock ticks since boot), or null when it does not exist or /proc is absent. */
export function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces; fields after its closing paren are space separated.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

let bootIdCache: string | null | undefined;

/** This boot's random id (Linux: /proc/sys/kernel/random/boot_id), or null elsewhere: with a pid's start time, tells a process from a later one given the same pid. */
export function currentBootId(): string | null {
  if (bootIdCache === undefined) {
    try {
      bootIdCache = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
    } catch {
      bootIdCache = null;
    }
  }
  return bootIdCache;
}
