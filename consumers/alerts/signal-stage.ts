import type { Message, Producer } from 'kafkajs';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { decodeOrDeadLetter, type BatchHandler, type DeadLetter } from '../../core/service/index.js';
import type { AuditEvent } from '../../schemas/index.js';
import type { AlertsMetrics } from './metrics.js';
import type { PiiDetector } from './pii.js';
import type { Rule } from './rules.js';
import { eventSignals, signalMessage } from './signals.js';
import { chunkBySize, MAX_RECORD_BYTES, recordBytes } from '../../core/clients/record-size.js';


/** Largest signal: a quarter of a record, so that the alert made of it (the workflow id about three times) still fits one. */
export const MAX_SIGNAL_BYTES = Math.floor(MAX_RECORD_BYTES / 4);

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
      const signals = eventSignals(decoded.event, deps.rules, deps.detector, Number(record.timestamp)).map(signalMessage);
      // A signal carries its key twice and the workflow id, and the alert stage 2 makes of it carries the workflow id
      // about three times (summary, evidence, query link): an event with a huge one (a 400 KB workflow id) makes a
      // record the broker refuses even alone, on every retry, here or in the outbox. Dead-lettered, it holds back no
      // other event's alerts.
      const largest = signals.reduce((n, m) => Math.max(n, recordBytes(m)), 0);
      if (largest > MAX_SIGNAL_BYTES) {
        deadLetters.push({ record, code: 'ALERT_SIGNAL_TOO_LARGE', reason: `event ${decoded.event.event_id} makes a signal of ${largest} bytes, above the ${MAX_SIGNAL_BYTES} a signal may have (its alert would pass the ${MAX_RECORD_BYTES} of a record); no rule evaluated it` });
        continue;
      }
      events += 1;
      messages.push(...signals);
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
