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

/**
 * Whether a recorded process still runs: 'ours' (same pid, boot and start
 * time), 'gone' (no such pid, another boot, or a later process given the
 * same pid), or 'unverifiable' (a process with that pid runs but its start
 * time is not known, so it cannot be told from an unrelated one). The local
 * stack's pid files and the producer spool's owner files both record
 * `bootId` and `startTicks` for this check.
 */
export function processIdentity(record: { pid: number; bootId?: string | null; startTicks?: string | null }): 'ours' | 'gone' | 'unverifiable' {
  if (!isProcessAlive(record.pid)) return 'gone';
  const boot = currentBootId();
  if (record.bootId && boot && record.bootId !== boot) return 'gone';
  const ticks = processStartTicks(record.pid);
  if (record.startTicks === null || record.startTicks === undefined || ticks === null) return 'unverifiable';
  return ticks === record.startTicks ? 'ours' : 'gone';
}
