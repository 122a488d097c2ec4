import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import path from 'node:path';
import { AuditlineError } from '../../core/errors.js';

/** One consumer service as the supervisor runs it: `auditline run <name>` in its own process. */
export interface SupervisedService {
  name: string;
  /** Port of its /metrics, /healthz and /readyz. */
  metricsPort: number;
  /** Node arguments of a helper process that is not a consumer service; default `<cli> run <name>`. */
  args?: string[];
  /** Path answering 200 when ready. @default '/readyz' */
  readyPath?: string;
  /** Extra environment of this process only. */
  env?: NodeJS.ProcessEnv;
}

/** `failed`: it exited with the CLI's exit code for wrong usage or an invalid setting (2), and is not restarted. */
export type ServiceState = 'starting' | 'ready' | 'not ready' | 'restarting' | 'stopping' | 'stopped' | 'failed';

/** Exit code of `auditline run` on an invalid setting (cli/exit.ts): restarting cannot help. */
const INVALID_SETTING_EXIT = 2;

export interface ServiceStatus {
  name: string;
  state: ServiceState;
  pid: number | undefined;
  restarts: number;
  metricsUrl: string;
  log: string;
  /** Exit code or signal of the last exit, when it exited. */
  lastExit?: string;
}

export interface SupervisorOptions {
  /** The CLI entry (dist/cli/main.js) each service is started with. */
  cli: string;
  logDir: string;
  env: NodeJS.ProcessEnv;
  /** Called whenever a service's state changes. */
  onChange: (statuses: ServiceStatus[]) => void;
  /** How long a service may take to stop after SIGTERM before it is killed. */
  stopTimeoutMs?: number;
  /** Readiness poll interval. */
  pollMs?: number;
}

/** Restart backoff: 1 s doubling to 30 s; back to 1 s once a process stayed up for a minute. */
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
const STABLE_MS = 60_000;

/** GET a health endpoint; true on 200. */
async function probe(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

class ServiceProcess {
  child: ChildProcess | undefined;
  state: ServiceState = 'stopped';
  restarts = 0;
  lastExit: string | undefined;
  private startedAt = 0;
  private backoffMs = BACKOFF_MIN_MS;
  private restartTimer: NodeJS.Timeout | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly log: string;

  constructor(
    readonly service: SupervisedService,
    private readonly options: SupervisorOptions,
    private readonly changed: () => void,
    private readonly stopping: () => boolean,
  ) {
    this.log = path.join(options.logDir, `${service.name}.log`);
  }

  get metricsUrl(): string {
    return `http://127.0.0.1:${this.service.metricsPort}`;
  }

  start(): void {
    const fd = openSync(this.log, 'a');
    const child = spawn(process.execPath, this.service.args ?? [this.options.cli, 'run', this.service.name], {
      env: { ...this.options.env, ...this.service.env },
      stdio: ['ignore', fd, fd],
      // Its own process group: a Ctrl-C in the terminal reaches the supervisor only, which stops
      // the services in order instead of racing their exits against its restart logic.
      detached: true,
    });
    closeSync(fd);
    this.child = child;
    this.startedAt = Date.now();
    this.setState('starting');
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.child = undefined;
        this.lastExit = signal ? `signal ${signal}` : `exit ${code}`;
        if (this.stopping()) {
          this.setState('stopped');
        } else if (code === INVALID_SETTING_EXIT) {
          this.lastExit = `exit ${code}, invalid setting`;
          this.setState('failed');
        } else {
          if (Date.now() - this.startedAt >= STABLE_MS) this.backoffMs = BACKOFF_MIN_MS;
          this.setState('restarting');
          this.restartTimer = setTimeout(() => {
            this.restarts += 1;
            this.start();
          }, this.backoffMs);
          this.backoffMs = Math.min(BACKOFF_MAX_MS, this.backoffMs * 2);
        }
        resolve();
      });
    });
  }

  /** Polls /readyz while running. */
  async poll(): Promise<void> {
    if (!this.child || this.state === 'stopping') return;
    const ready = await probe(`${this.metricsUrl}${this.service.readyPath ?? '/readyz'}`);
    // The state may have changed while the probe ran.
    if (!this.child || (this.state as ServiceState) === 'stopping') return;
    if (ready) this.setState('ready');
    else if (this.state === 'ready') this.setState('not ready');
  }

  async stop(timeoutMs: number): Promise<void> {
    clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child) {
      this.setState('stopped');
      return;
    }
    this.setState('stopping');
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(killer);
  }

  private setState(state: ServiceState): void {
    if (state === this.state) return;
    this.state = state;
    this.changed();
  }
}

/**
 * Runs every consumer service as its own process (`auditline run <name>`,
 * output appended to `<logDir>/<name>.log`), watches /readyz, restarts a
 * service that exits with a growing backoff, and stops them all with SIGTERM
 * (graceful shutdown; SIGKILL after stopTimeoutMs).
 */
export class Supervisor {
  private readonly processes: ServiceProcess[];
  private stopping = false;
  private pollTimer: NodeJS.Timeout | undefined;

  constructor(
    services: readonly SupervisedService[],
    private readonly options: SupervisorOptions,
  ) {
    mkdirSync(options.logDir, { recursive: true });
    this.processes = services.map((s) => new ServiceProcess(s, options, () => options.onChange(this.status()), () => this.stopping));
  }

  start(): void {
    // Should the supervisor itself end abruptly (an uncaught error), its services must not outlive it.
    process.once('exit', () => this.processes.forEach((p) => p.child?.kill('SIGTERM')));
    for (const p of this.processes) p.start();
    const poll = async () => {
      await Promise.all(this.processes.map((p) => p.poll()));
      if (!this.stopping) this.pollTimer = setTimeout(() => void poll(), this.options.pollMs ?? 1_000);
    };
    void poll();
  }

  status(): ServiceStatus[] {
    return this.processes.map((p) => ({
      name: p.service.name,
      state: p.state,
      pid: p.child?.pid,
      restarts: p.restarts,
      metricsUrl: p.metricsUrl,
      log: p.log,
      ...(p.lastExit ? { lastExit: p.lastExit } : {}),
    }));
  }

  /** Resolves when every service reports ready, or rejects after timeoutMs naming those that are not. */
  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const describe = (ps: readonly ServiceProcess[]) => ps.map((p) => `${p.service.name} (${p.state}${p.lastExit ? `, last ${p.lastExit}` : ''}; log ${p.log})`).join(', ');
    for (;;) {
      const notReady = this.processes.filter((p) => p.state !== 'ready');
      if (notReady.length === 0) return;
      const failed = notReady.filter((p) => p.state === 'failed');
      if (failed.length > 0) throw new AuditlineError('SERVICE_START_FAILED', `stopped by an invalid setting (the log says which): ${describe(failed)}`);
      if (Date.now() > deadline) throw new AuditlineError('SERVICE_START_FAILED', `not ready after ${Math.round(timeoutMs / 1000)} s: ${describe(notReady)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /** Sends `signal` to one service's process (e.g. SIGKILL to rehearse a crash); it is restarted like any exit. Returns the pid signalled. */
  kill(name: string, signal: NodeJS.Signals): number | undefined {
    const p = this.processes.find((x) => x.service.name === name);
    if (!p) throw new Error(`no service ${name}`);
    const pid = p.child?.pid;
    p.child?.kill(signal);
    return pid;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.pollTimer);
    await Promise.all(this.processes.map((p) => p.stop(this.options.stopTimeoutMs ?? 30_000)));
  }
}
