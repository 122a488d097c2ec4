import { AuditlineError, errorMessage, isAuditlineError } from '../core/errors.js';
import { MAX_RECORD_BYTES } from '../core/clients/record-size.js';
import type { KafkaSender } from './kafka-sender.js';
import type { ProducerLogger } from './logger.js';
import type { ProducerMetrics } from './metrics.js';
import type { AckMode } from './options.js';
import { auditUnavailable } from './producer-errors.js';
import type { QueuedRecord, Settlement } from './record-queue.js';
import type { Spool } from './spool.js';

/**
 * Decides where one batch goes and settles its acknowledgements:
 * - a record larger than a Kafka record may be fails at once (AUDIT_REJECTED);
 * - ack 'spool', or anything still in the spool: append to the spool
 *   (fdatasync) - the spool is then the ordered path to Kafka;
 * - otherwise send to Kafka; on a retriable failure append to the spool;
 *   records Kafka refuses for good are retried one by one so that only the
 *   refused one fails (AUDIT_REJECTED).
 * An event that can be neither sent nor spooled fails with
 * AUDIT_UNAVAILABLE; the failure policy is applied by the caller.
 */
export class Delivery {
  constructor(
    private readonly ack: AckMode,
    private readonly sender: KafkaSender,
    private readonly spool: () => Spool | undefined,
    private readonly spooledHook: () => void,
    private readonly metrics: ProducerMetrics,
    private readonly logger: ProducerLogger,
    /** Waits (bounded) for the replayer to hand spooled events to Kafka, which frees spool space. */
    private readonly makeRoom: () => Promise<void> = async () => undefined,
  ) {}

  async deliver(all: QueuedRecord[]): Promise<void> {
    const batch = this.refuseOversized(all);
    if (batch.length === 0) return;
    const spool = this.spool();
    if (spool && (this.ack === 'spool' || spool.pendingEvents > 0)) {
      await this.toSpool(spool, batch, undefined);
      return;
    }
    try {
      await this.send(batch);
    } catch (err) {
      if (isAuditlineError(err, 'AUDIT_REJECTED')) {
        await this.oneByOne(batch, spool);
        return;
      }
      await this.fallback(spool, batch, err);
    }
  }

  /**
   * Appends the batch; a full spool is given one chance to drain first (Kafka
   * back after an outage, the replayer catching up) rather than failing the
   * events while Kafka could take them.
   */
  private async appendOrWait(spool: Spool, batch: QueuedRecord[]): Promise<void> {
    const records = batch.map((r) => r.record);
    try {
      await spool.append(records);
    } catch (err) {
      if (!isSpoolFull(err)) throw err;
      this.spooledHook();
      await this.makeRoom();
      await spool.append(records);
    }
  }

  /**
   * Fails at once (AUDIT_REJECTED) the records larger than a Kafka record may
   * be: the broker would refuse them for good, and one acknowledged as
   * spooled first would be refused only later, out of the caller's sight.
   */
  private refuseOversized(batch: QueuedRecord[]): QueuedRecord[] {
    const fits: QueuedRecord[] = [];
    for (const r of batch) {
      const bytes = r.bytes;
      if (bytes <= MAX_RECORD_BYTES) {
        fits.push(r);
        continue;
      }
      this.logger.error({ eventId: r.eventId, executionId: r.executionId, bytes, limit: MAX_RECORD_BYTES }, 'audit event larger than a Kafka record may be; refused');
      r.ack.reject(
        new AuditlineError('AUDIT_REJECTED', `audit event refused: ${bytes} bytes encoded, above the ${MAX_RECORD_BYTES} a Kafka record may have; lower maxPayloadBytes (each JSON payload is cut to it)`, {
          details: { bytes, limit: MAX_RECORD_BYTES },
        }),
      );
    }
    return fits;
  }

  private async send(batch: QueuedRecord[]): Promise<void> {
    const started = performance.now();
    try {
      await this.sender.send(batch.map((r) => r.record));
    } catch (err) {
      this.metrics.sendFailed(err instanceof AuditlineError && err.retriable);
      throw err;
    }
    this.metrics.sendTook((performance.now() - started) / 1000);
    this.metrics.delivered(batch.length, 'direct');
    settle(batch, 'delivered');
  }

  private async oneByOne(batch: QueuedRecord[], spool: Spool | undefined): Promise<void> {
    for (let i = 0; i < batch.length; i++) {
      const record = batch[i]!;
      try {
        await this.send([record]);
      } catch (err) {
        if (isAuditlineError(err, 'AUDIT_REJECTED')) {
          this.logger.error({ eventId: record.eventId, executionId: record.executionId, error: errorMessage(err) }, 'Kafka refused an audit event');
          record.ack.reject(err);
          continue;
        }
        await this.fallback(spool, batch.slice(i), err);
        return;
      }
    }
  }

  private async fallback(spool: Spool | undefined, batch: QueuedRecord[], kafkaError: unknown): Promise<void> {
    if (spool) {
      await this.toSpool(spool, batch, kafkaError);
      return;
    }
    const err = auditUnavailable(`Kafka is unavailable${kafkaErrorType(kafkaError)} and spooling is disabled (spoolDir false)`, kafkaError);
    for (const r of batch) r.ack.reject(err);
  }

  private async toSpool(spool: Spool, batch: QueuedRecord[], kafkaError: unknown): Promise<void> {
    try {
      await this.appendOrWait(spool, batch);
    } catch (err) {
      this.reject(spool, batch, kafkaError, err);
      return;
    }
    this.metrics.spooled(batch.length);
    if (kafkaError !== undefined) {
      this.logger.warn({ events: batch.length, spooledEvents: spool.pendingEvents, error: errorMessage(kafkaError) }, 'Kafka unavailable; audit events spooled');
    }
    settle(batch, 'spooled');
    this.spooledHook();
  }

  /**
   * Fails a batch the spool could not take. When a send to Kafka failed
   * first, AUDIT_UNAVAILABLE's cause has both errors (an AggregateError:
   * [Kafka error, spool error]) and both are logged; otherwise the spool
   * error alone. Messages name error types and settings, never payloads.
   */
  private reject(spool: Spool, batch: QueuedRecord[], kafkaError: unknown, spoolError: unknown): void {
    let failure: AuditlineError;
    if (kafkaError === undefined) {
      failure = auditUnavailable(`the spool failed: ${errorMessage(spoolError)}`, spoolError, { spoolDir: spool.dir });
    } else {
      const kafkaType = kafkaErrorName(kafkaError);
      const cause = new AggregateError([kafkaError, spoolError], 'Kafka and the spool failed');
      failure = auditUnavailable(`Kafka is unavailable${kafkaErrorType(kafkaError)} and the spool failed: ${errorMessage(spoolError)}`, cause, { spoolDir: spool.dir, kafkaError: kafkaType });
      this.logger.error(
        { events: batch.length, spoolDir: spool.dir, kafkaError: kafkaType, error: errorMessage(kafkaError), spoolError: errorMessage(spoolError) },
        'Kafka unavailable and the spool failed; audit events not recorded',
      );
    }
    for (const r of batch) r.ack.reject(failure);
  }
}

/** ` (<Kafka error type>)` when the failed send names one, e.g. UNKNOWN_TOPIC_OR_PARTITION. */
function kafkaErrorType(err: unknown): string {
  const type = kafkaErrorName(err);
  return type === undefined ? '' : ` (${type})`;
}

/** The Kafka error type a failed send names (details.kafkaError), if any. */
function kafkaErrorName(err: unknown): string | undefined {
  const type = isAuditlineError(err) ? err.details.kafkaError : undefined;
  return typeof type === 'string' ? type : undefined;
}

function isSpoolFull(err: unknown): boolean {
  return isAuditlineError(err, 'SPOOL_FAILED') && err.details.reason === 'full';
}

function settle(batch: QueuedRecord[], outcome: Settlement): void {
  for (const r of batch) r.ack.resolve(outcome);
}
