import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { isRunning, portInUse, processIdentity, readPidFile, removeFile, sleep, startDetached, stopRecorded, tailFile, type PidRecord } from './processes.js';
import type { Progress } from './provision.js';
import { clearActiveStack, recordActiveStack } from './active.js';
import { withLock } from './lock.js';
import { serviceDefs, type ServiceDef } from './services.js';
import { DEFAULT_STACK_PORTS, SERVICE_NAMES, stackPorts, type ServiceName, type StackSettings } from './settings.js';

export interface ServiceStatus {
  service: ServiceName;
  state: 'healthy' | 'unhealthy' | 'stopped';
  endpoint: string;
  pid: number | null;
  logFile: string;
  /** Set when a pid file pointed at a process that is gone (or a reused pid). */
  stalePid?: number;
  /** Set when the pid's start time is unknown: it may be an unrelated process, and `down` will not signal it. */
  unverified?: true;
}

function pidFile(s: StackSettings, name: ServiceName): string {
  return path.join(s.stackDir, 'run', `${name}.pid`);
}
function logFile(s: StackSettings, name: ServiceName): string {
  return path.join(s.stackDir, 'logs', `${name}.log`);
}

/** Selected services plus everything they depend on, in start order. */
function withDependencies(defs: Record<ServiceName, ServiceDef>, only?: ServiceName[]): ServiceName[] {
  const wanted = new Set<ServiceName>();
  const add = (n: ServiceName) => {
    if (wanted.has(n)) return;
    wanted.add(n);
    defs[n].dependsOn.forEach(add);
  };
  (only ?? [...SERVICE_NAMES]).forEach(add);
  return SERVICE_NAMES.filter((n) => wanted.has(n));
}

/**
 * Provisions what is missing, starts every service not already running and
 * waits for each one's health probe. Services already running are left
 * alone, so running `up` twice starts nothing twice. Independent services
 * start in parallel; a service starts once its dependencies are healthy.
 * `started` receives the name of each service this call started, also when
 * it fails later, so a caller can stop exactly those (`down --only`).
 */
export async function stackUp(s: StackSettings, progress: Progress, only?: ServiceName[], started: ServiceName[] = []): Promise<ServiceStatus[]> {
  // One `up` per stack directory at a time: another would start the same services again, or format Kafka's storage twice.
  return withLock(path.join(s.stackDir, 'run', 'up.lock'), (pid) => progress(`waiting for another \`stack up\` on ${s.stackDir} (pid ${pid}) to finish`), () =>
    upLocked(s, progress, only, started),
  );
}

async function upLocked(s: StackSettings, progress: Progress, only: ServiceName[] | undefined, started: ServiceName[]): Promise<ServiceStatus[]> {
  const defs = serviceDefs(s);
  const names = withDependencies(defs, only);
  mkdirSync(path.join(s.stackDir, 'run'), { recursive: true });
  mkdirSync(path.join(s.stackDir, 'logs'), { recursive: true });

  const healthy = new Map<ServiceName, Promise<void>>();
  let mavenQueue: Promise<unknown> = Promise.resolve();
  for (const name of names) {
    const def = defs[name];
    // Downloads do not wait for other services, but Maven's local repository
    // is not safe for concurrent writers: the Java services queue for it.
    const provisioned = def.usesMaven ? (mavenQueue = mavenQueue.catch(() => undefined).then(() => def.provision(progress))) : def.provision(progress);
    const dependencies = def.dependsOn.filter((d) => names.includes(d)).map((d) => healthy.get(d));
    const dependenciesUp = Promise.all(dependencies).catch(() => {
      throw new AuditlineError('STACK_START_FAILED', `${name}: not started because ${def.dependsOn.join(', ')} did not start`);
    });
    healthy.set(
      name,
      Promise.all([provisioned, dependenciesUp]).then(() => startOne(s, def, progress, () => started.push(name))),
    );
  }
  const results = await Promise.allSettled(names.map((n) => healthy.get(n)!));
  const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [{ name: names[i]!, error: r.reason as unknown }] : []));
  if (failures.length === 1 && failures[0]!.error instanceof AuditlineError) throw failures[0]!.error;
  if (failures.length > 0) {
    const message = failures.map((f) => errorMessage(f.error)).join('\n\n');
    throw new AuditlineError('STACK_START_FAILED', message, {
      cause: failures[0]!.error,
      details: { services: failures.map((f) => f.name).join(',') },
    });
  }
  // Only the stack on the default ports is the machine's stack that other clones follow (active.ts).
  recordActiveStack(s.cacheDir, s.stackDir, stackPorts(s), DEFAULT_STACK_PORTS);
  return stackStatus(s, names);
}

async function startOne(s: StackSettings, def: ServiceDef, progress: Progress, onStarted: () => void): Promise<void> {
  const file = pidFile(s, def.name);
  const existing = readPidFile(file);
  if (existing && isRunning(existing)) {
    if (await def.probe()) {
      progress(`${def.name}: already running (pid ${existing.pid}) at ${def.endpoint}`);
      return;
    }
    progress(`${def.name}: running (pid ${existing.pid}) but not healthy yet; waiting`);
    await waitHealthy(s, def, existing);
    return;
  }
  if (existing) {
    progress(`${def.name}: removing stale pid file (pid ${existing.pid} is not running)`);
    removeFile(file);
  }
  for (const port of def.ports) {
    if (await portInUse(port)) {
      throw new AuditlineError(
        'STACK_PORT_IN_USE',
        `${def.name}: port ${port} is already in use by a process this stack did not start; stop it or choose another port (docs/local-stack.md)`,
        { details: { service: def.name, port } },
      );
    }
  }
  let record: PidRecord;
  let ended: string | undefined;
  try {
    const cmd = def.prepare();
    record = await startDetached({ ...cmd, logFile: logFile(s, def.name), pidFile: file, onExit: (how) => (ended = how) });
  } catch (err) {
    if (err instanceof AuditlineError && err.message.startsWith(`${def.name}: `)) throw err;
    throw new AuditlineError('STACK_START_FAILED', `${def.name}: could not start: ${errorMessage(err)}`, { cause: err, details: { service: def.name } });
  }
  onStarted();
  progress(`${def.name}: started (pid ${record.pid}), log ${record.logFile}`);
  await waitHealthy(s, def, record, () => ended);
}

/** `ended`: how the process ended, when this launcher started it and saw it end. */
async function waitHealthy(s: StackSettings, def: ServiceDef, record: PidRecord, ended: () => string | undefined = () => undefined): Promise<void> {
  const started = Date.now();
  const deadline = started + s.startTimeoutMs;
  while (Date.now() < deadline) {
    if (!isRunning(record)) {
      removeFile(pidFile(s, def.name));
      await sleep(50); // the child's exit event, if it is ours, comes with its reaping
      const how = ended();
      throw new AuditlineError(
        'STACK_START_FAILED',
        `${def.name}: process ${record.pid} exited during start${how ? ` (${how})` : ''}. Last lines of ${record.logFile}:\n${tailFile(record.logFile)}\n` +
          `If the log points at damaged downloaded files, delete ${def.cacheFolder} and run \`stack up\` again to download it again.`,
        { details: { service: def.name } },
      );
    }
    if (await def.probe()) return;
    await sleep(500);
  }
  throw new AuditlineError(
    'STACK_START_FAILED',
    `${def.name}: not healthy after ${s.startTimeoutMs / 1000} s (pid ${record.pid} still running). Last lines of ${record.logFile}:\n${tailFile(record.logFile)}`,
    { details: { service: def.name } },
  );
}

/**
 * Stops the processes this stack started, dependants first, each by its
 * recorded pid (never by name). Data stays in the stack directory.
 * `only` stops just those services (their dependants keep running and
 * retry, which is how outages are rehearsed).
 */
export async function stackDown(s: StackSettings, progress: Progress, only?: ServiceName[]): Promise<void> {
  try {
    await stopServices(s, progress, only);
  } finally {
    clearActiveStack(s.cacheDir, s.stackDir);
  }
}

async function stopServices(s: StackSettings, progress: Progress, only?: ServiceName[]): Promise<void> {
  const unreadable: AuditlineError[] = [];
  for (const name of [...SERVICE_NAMES].reverse().filter((n) => !only || only.includes(n))) {
    const file = pidFile(s, name);
    let record: PidRecord | undefined;
    try {
      record = readPidFile(file);
    } catch (err) {
      // The other services are still stopped; this one is reported at the end.
      if (!(err instanceof AuditlineError)) throw err;
      unreadable.push(err);
      continue;
    }
    if (!record) continue;
    const outcome = await stopRecorded(record);
    removeFile(file);
    progress(
      outcome === 'not-running'
        ? `${name}: was not running (stale pid file removed)`
        : outcome === 'unverifiable'
          ? `${name}: pid ${record.pid} NOT signalled: its start time is unknown, so it cannot be told from an unrelated process with the same pid; pid file removed, stop that process yourself if it is the service`
          : `${name}: ${outcome === 'killed' ? 'killed after the grace period' : 'stopped'} (pid ${record.pid})`,
    );
  }
  if (unreadable.length === 1) throw unreadable[0]!;
  if (unreadable.length > 1) throw new AuditlineError('STACK_PID_FILE_INVALID', unreadable.map((e) => e.message).join('\n'), { cause: unreadable[0] });
}

/** State, endpoint, pid and log file of each service, with a live health probe. */
export async function stackStatus(s: StackSettings, names: ServiceName[] = [...SERVICE_NAMES]): Promise<ServiceStatus[]> {
  const defs = serviceDefs(s);
  return Promise.all(
    names.map(async (name): Promise<ServiceStatus> => {
      const def = defs[name];
      const record = readPidFile(pidFile(s, name));
      const identity = record === undefined ? 'gone' : processIdentity(record);
      const base = { service: name, endpoint: def.endpoint, logFile: logFile(s, name) };
      if (record === undefined || identity === 'gone') {
        return { ...base, state: 'stopped', pid: null, ...(record ? { stalePid: record.pid } : {}) };
      }
      return { ...base, state: (await def.probe()) ? 'healthy' : 'unhealthy', pid: record.pid, ...(identity === 'unverifiable' ? { unverified: true as const } : {}) };
    }),
  );
}

/** The status as an aligned text table. */
export function formatStatus(rows: ServiceStatus[]): string {
  const table = [
    ['SERVICE', 'STATE', 'ENDPOINT', 'PID', 'LOG'],
    ...rows.map((r) => [r.service, r.state + (r.stalePid ? ` (stale pid ${r.stalePid})` : '') + (r.unverified ? ' (pid not verified)' : ''), r.endpoint, r.pid ? String(r.pid) : '-', r.logFile]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
