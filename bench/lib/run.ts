/**
 * Start and clean-up helpers shared by the benchmarks: a deadline for a
 * step that could wait forever (a service's start waits for its
 * dependencies with backoff, without end), and the clean-up a bench runs in
 * its `finally` whether it finished or failed.
 */
import { errorMessage } from '../../core/errors.js';
import { RegistryClient, valueSubject } from '../../schemas/index.js';
import type { Endpoints } from '../../core/endpoints.js';

/** `work`, or a rejection naming `what` once `ms` have passed (then `onTimeout`, e.g. aborting the start). */
export async function withDeadline<T>(what: string, ms: number, work: Promise<T>, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`${what} did not finish within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Clean-up steps (topics, groups, databases, buckets, registry subjects,
 * scratch folders), added as each resource is made and run in reverse order
 * by `run()`. A step that fails is reported on stderr and the others still
 * run, so one failure does not leave the rest behind.
 */
export class Cleanup {
  private readonly steps: { what: string; step: () => unknown }[] = [];

  add(what: string, step: () => unknown): void {
    this.steps.push({ what, step });
  }

  async run(): Promise<void> {
    for (let s = this.steps.pop(); s; s = this.steps.pop()) {
      try {
        await s.step();
      } catch (err) {
        process.stderr.write(`cleanup: ${s.what} failed: ${errorMessage(err)}\n`);
      }
    }
  }
}

/** Deletes the value subjects of `topics` from the registry, softly then for good (the bench registered them). */
export async function deleteSubjects(registry: Endpoints['registry'], topics: readonly string[]): Promise<void> {
  const client = new RegistryClient(registry);
  for (const topic of topics) await client.deleteSubject(valueSubject(topic));
}
