import type { Message, Producer } from 'kafkajs';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { decodeOrDeadLetter, type BatchHandler, type DeadLetter } from '../../core/service/index.js';
import type { AuditEvent } from '../../schemas/index.js';
import type { AlertsMetrics } from './metrics.js';
import type { PiiDetector } from './pii.js';
import type { Rule } from './rules.js';
import { eventSignals, signalMessage } from './signals.js';
import { chunkBySize } from '../../core/clients/record-size.js';


export interface SignalStageDeps {
  codec: { decode(message: Buffer): Promise<AuditEvent> };
  rules: readonly Rule[];
  detector: PiiDetector;
  producer: Pick<Producer, 'send'>;
  signalsTopic: string;
  metrics?: AlertsMetrics;
}

/**
 * Stage 1 (audit.events, group `auditline-alerts`): decodes each event,
 * evaluates every rule's conditions, and writes the relevant ones as
 * signals keyed by rule key before the offsets are committed. Stateless:
 * a redelivered batch writes its signals again, which stage 2 drops by
 * event id.
 */
export function createSignalStageHandler(deps: SignalStageDeps): BatchHandler {
  return async (records) => {
    const deadLetters: DeadLetter[] = [];
    const messages: Message[] = [];
    let events = 0;
    for (const record of records) {
      const decoded = await decodeOrDeadLetter(deps.codec, record);
      if ('deadLetter' in decoded) {
        deadLetters.push(decoded.deadLetter);
        continue;
      }
      events += 1;
      for (const s of eventSignals(decoded.event, deps.rules, deps.detector, Number(record.timestamp))) messages.push(signalMessage(s));
    }
    if (messages.length > 0) {
      try {
        // Runs of at most 512 KiB keep each request below the broker's record limit. Counted in bytes, not signals: a
        // signal carries its key twice and the workflow id, so 2000 of one long key (a 400-character workflow id)
        // passed 1 MiB and the batch was refused on every retry.
        for (const run of chunkBySize(messages)) await deps.producer.send({ topic: deps.signalsTopic, acks: -1, messages: run });
      } catch (err) {
        throw new AuditlineError('KAFKA_UNAVAILABLE', `cannot write ${messages.length} signals to ${deps.signalsTopic}: ${errorMessage(err)}`, { retriable: true, cause: err });
      }
    }
    deps.metrics?.evaluated(events, deps.rules.length);
    deps.metrics?.signalled(messages.length);
    return { deadLetters };
  };
}
