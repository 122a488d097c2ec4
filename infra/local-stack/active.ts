import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { isRunning, readPidFile } from './processes.js';
import type { StackPorts } from './settings.js';

/**
 * The local stack listens on fixed ports, so one runs per machine at a time,
 * whichever clone started it. Its data and its generated secrets live in
 * that clone's stack directory: another clone of the project must use that
 * directory too, or it would make up keys of its own (tokens and reveals
 * that do not match the data, signatures that do not verify) and report the
 * running services as stopped. `stack up` records its directory in the
 * shared cache; a clone whose own directory runs nothing follows the record
 * while a service recorded there still runs.
 *
 * Only the stack on the default ports is the machine's stack: a private one
 * (a test's, on ports of its own) neither writes nor clears the record, and
 * a record is followed only by settings with the same ports, so a clone
 * never pairs another stack's pid files with its own ports.
 */
const RECORD = 'active-stack.json';

/** True when a pid file of `stackDir` names a process that still runs. */
export function runsServices(stackDir: string): boolean {
  const run = path.join(stackDir, 'run');
  if (!existsSync(run)) return false;
  return readdirSync(run)
    .filter((f) => f.endsWith('.pid'))
    .some((f) => {
      try {
        const record = readPidFile(path.join(run, f));
        return record !== undefined && isRunning(record);
      } catch {
        return true; // an unreadable pid file may stand for a running service: `stack` commands on this directory report it
      }
    });
}

/** Notes `stackDir` as the machine's running stack (after `stack up`) when it listens on `defaults`; returns whether it did. */
export function recordActiveStack(cacheDir: string, stackDir: string, ports: StackPorts, defaults: StackPorts): boolean {
  if (!samePorts(ports, defaults)) return false;
  mkdirSync(cacheDir, { recursive: true });
  const file = path.join(cacheDir, RECORD);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ stackDir, ports })}\n`);
  renameSync(tmp, file);
  return true;
}

function samePorts(a: StackPorts, b: StackPorts): boolean {
  return a.kafka === b.kafka && a.kafkaController === b.kafkaController && a.registry === b.registry && a.clickhouse === b.clickhouse && a.s3 === b.s3;
}

/** Forgets the record when it names `stackDir` and nothing of it runs any more (after `stack down`). */
export function clearActiveStack(cacheDir: string, stackDir: string): void {
  if (activeRecord(cacheDir)?.stackDir === stackDir && !runsServices(stackDir)) rmSync(path.join(cacheDir, RECORD), { force: true });
}

/** The record, if any; one without ports (written before they were recorded) is not trusted. */
function activeRecord(cacheDir: string): { stackDir: string; ports: StackPorts } | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path.join(cacheDir, RECORD), 'utf8')) as { stackDir?: unknown; ports?: Partial<StackPorts> };
    const p = parsed.ports;
    if (typeof parsed.stackDir !== 'string' || typeof p !== 'object' || p === null) return undefined;
    if (![p.kafka, p.kafkaController, p.registry, p.clickhouse, p.s3].every((n) => typeof n === 'number')) return undefined;
    return { stackDir: parsed.stackDir, ports: p as StackPorts };
  } catch {
    return undefined;
  }
}

/**
 * The stack directory to use when none is configured: the project's own,
 * unless it runs nothing and the recorded one (another clone's, on the same
 * `ports`) still runs a service.
 */
export function resolveStackDir(ownDir: string, cacheDir: string, ports: StackPorts): string {
  const record = activeRecord(cacheDir);
  if (record === undefined || !samePorts(record.ports, ports)) return ownDir;
  const active = record.stackDir;
  if (active === ownDir || runsServices(ownDir) || !runsServices(active)) return ownDir;
  return active;
}
