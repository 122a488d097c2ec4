import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { assetPath } from '../../core/paths.js';
import { readPidFile, stopRecorded } from '../../infra/local-stack/processes.js';
import { tempDir } from './temp-dir.js';

const run = promisify(execFile);
const cli = assetPath('dist', 'cli', 'main.js');

/**
 * A Kafka broker of a test's own, for tests that stop and restart it: the
 * launcher (`auditline stack up --only kafka`) in a private stack directory
 * on private ports, never the shared stack. Its data stays in that
 * directory, so a restart brings back the same topics and records.
 */
export class PrivateKafka {
  readonly stackDir = tempDir('auditline-it-private-stack');
  readonly brokers: string[];
  private readonly env: NodeJS.ProcessEnv;

  constructor(ports: { kafka: number; controller: number; registry: number }) {
    this.brokers = [`127.0.0.1:${ports.kafka}`];
    this.env = {
      ...process.env,
      AUDITLINE_STACK_DIR: this.stackDir,
      AUDITLINE_STACK_KAFKA_PORT: String(ports.kafka),
      AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: String(ports.controller),
      // Never started here; set so that nothing in this stack can point at the shared registry's port.
      AUDITLINE_STACK_REGISTRY_PORT: String(ports.registry),
    };
  }

  /** Starts the broker (or finds it running) and waits until it is healthy. */
  async up(): Promise<void> {
    await this.stack('up', '--only', 'kafka');
  }

  /**
   * An outage: SIGTERM to the broker's process group, as recorded in the
   * pid file, then waits for the group to exit (SIGKILL after `graceMs`).
   * The pid file stays behind, stale, as after a crash; `up()` replaces it.
   */
  async stop(graceMs = 20_000): Promise<void> {
    const record = readPidFile(path.join(this.stackDir, 'run', 'kafka.pid'));
    if (!record) throw new Error(`no kafka pid file in ${this.stackDir}`);
    await stopRecorded(record, graceMs);
  }

  /** `stack down` on the private stack: stops whatever it still runs; safe to call in any state. */
  async down(): Promise<void> {
    await this.stack('down').catch(() => undefined);
  }

  private async stack(...args: string[]): Promise<void> {
    try {
      await run(process.execPath, [cli, 'stack', ...args], { env: this.env, timeout: 120_000 });
    } catch (err) {
      const e = err as { stderr?: string; message?: string };
      throw new Error(`auditline stack ${args.join(' ')} failed: ${e.stderr?.slice(-2000) || e.message}`);
    }
  }
}
