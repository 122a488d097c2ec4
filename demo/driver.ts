import type { AuditProducer } from '../producers/index.js';
import { DEMO_WORKFLOWS, seededRandom, type DemoOutcome, type DemoStatus, type DemoWorkflow } from './workflows.js';
import { AuditlineError, errorMessage } from '../core/errors.js';

export interface DemoOptions {
  executions: number;
  /** Executions started per second. */
  rate: number;
  seed: number;
  /** Executions running at the same time at most. */
  concurrency: number;
  onProgress?: (progress: DemoProgress) => void;
  /** How often onProgress is called. */
  progressEveryMs?: number;
  workflows?: readonly DemoWorkflow[];
}

export interface DemoProgress {
  started: number;
  done: number;
  total: number;
  elapsedMs: number;
}

export interface DemoSummary {
  outcomes: DemoOutcome[];
  /** Outcome counts per workflow id. */
  byWorkflow: Record<string, Record<DemoStatus, number>>;
  elapsedMs: number;
  /** Executions whose client calls threw (Kafka and the spool both unavailable); none is hidden. */
  errors: number;
  /** Why they threw: each distinct message and how many executions it stopped. */
  errorMessages: { message: string; count: number }[];
}

const emptyCounts = (): Record<DemoStatus, number> => ({ success: 0, failed: 0, partial: 0, unfinished: 0 });

/**
 * Starts `executions` simulated workflow executions at `rate` per second
 * (round-robin over the workflows, branches drawn from the seed), at most
 * `concurrency` at a time, and waits for all of them. A client error
 * (Kafka and spool both unavailable) is counted, not hidden.
 */
export async function runDemo(audit: AuditProducer, options: DemoOptions): Promise<DemoSummary> {
  const workflows = options.workflows ?? DEMO_WORKFLOWS;
  const random = seededRandom(options.seed);
  const outcomes: DemoOutcome[] = [];
  const t0 = performance.now();
  let started = 0;
  let errors = 0;
  const errorMessages = new Map<string, number>();
  const progress = () => options.onProgress?.({ started, done: outcomes.length + errors, total: options.executions, elapsedMs: performance.now() - t0 });
  const timer = options.onProgress ? setInterval(progress, options.progressEveryMs ?? 1_000) : undefined;
  const running = new Set<Promise<void>>();
  try {
    for (let i = 0; i < options.executions; i++) {
      // Pace starts: execution i starts no earlier than i / rate seconds in.
      const due = (i / options.rate) * 1_000 - (performance.now() - t0);
      if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
      while (running.size >= options.concurrency) await Promise.race(running);
      const workflow = workflows[i % workflows.length]!;
      started += 1;
      const p = workflow.run(audit, random).then(
        (o) => void outcomes.push(o),
        (err: unknown) => {
          errors += 1;
          const message = err instanceof AuditlineError ? `${err.code}: ${err.message}` : errorMessage(err);
          errorMessages.set(message, (errorMessages.get(message) ?? 0) + 1);
        },
      );
      const tracked = p.finally(() => running.delete(tracked));
      running.add(tracked);
    }
    await Promise.all(running);
  } finally {
    if (timer) clearInterval(timer);
  }
  progress();
  const byWorkflow: DemoSummary['byWorkflow'] = {};
  for (const o of outcomes) (byWorkflow[o.workflowId] ??= emptyCounts())[o.status] += 1;
  return { outcomes, byWorkflow, elapsedMs: performance.now() - t0, errors, errorMessages: [...errorMessages].map(([message, count]) => ({ message, count })) };
}
