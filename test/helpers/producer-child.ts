/**
 * A workflow process for the crash test: `run` records executions with
 * ack 'spool' forever and prints `ACK <event id> <execution id> <sequence>`
 * for every acknowledged event; `recover` opens the same spool, lets it
 * reach Kafka and prints `RECOVERED <events still spooled>`.
 * Usage: node producer-child.js run|recover <topic> <spoolDir> [brokers]
 */
import { createAuditProducer, type AuditReceipt } from '../../producers/index.js';
import { connection } from './producer-kafka.js';

const [mode, topic, spoolDir, brokers] = process.argv.slice(2);
const audit = createAuditProducer({
  ...connection,
  ...(brokers ? { brokers: brokers.split(','), sendTimeoutMs: 500 } : {}),
  service: 'crash-test',
  topic: topic!,
  spoolDir: spoolDir!,
  ack: 'spool',
});

// Writes to a pipe are synchronous on Linux: a printed line was out before any later kill.
const ack = (r: AuditReceipt): void => void process.stdout.write(`ACK ${r.eventId} ${r.executionId} ${r.sequence}\n`);

async function workflowLoop(worker: number): Promise<never> {
  for (let n = 0; ; n++) {
    const run = await audit.startExecution({ workflowId: `WF-${worker}`, trigger: 'api', triggeredBy: { kind: 'service', id: 'crash-test' }, input: { worker, n } });
    ack(run.started);
    for (let s = 1; s <= 3; s++) {
      const now = Date.now();
      ack(await run.recordStep({ name: `step-${s}`, status: 'success', startTime: now, endTime: now, input: { s } }));
    }
    ack(await run.decision({ condition: 'n > 0', taken: n > 0 ? 'yes' : 'no' }));
    ack(await run.finish('success'));
  }
}

if (mode === 'run') {
  await Promise.all([1, 2, 3, 4].map(workflowLoop));
} else {
  await audit.ready();
  const result = await audit.close();
  process.stdout.write(`RECOVERED ${result.spooledEvents}\n`);
}
