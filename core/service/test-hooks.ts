import type { Logger } from '../logger.js';

/**
 * A crash test's hook (settings such as AUDITLINE_HOTSTORE_TEST_PAUSE_AFTER_INSERT,
 * never set in a deployment): the `times`-th call logs `message` at warn
 * (the logger writes synchronously, see createLogger, so the line is out
 * before the stop) and stops this process with SIGSTOP, so that a test can
 * SIGKILL it at exactly that point. Every other call does nothing.
 */
export function pauseOnce(logger: Logger, hook: string, message: string, times = 1): () => void {
  let calls = 0;
  return () => {
    calls += 1;
    if (calls !== times) return;
    logger.warn({ hook }, message);
    process.kill(process.pid, 'SIGSTOP');
  };
}
