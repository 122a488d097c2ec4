import { errorMessage, isAuditlineError } from '../core/errors.js';
import { recordBytes } from '../core/clients/record-size.js';
import { AuditEventCodec, RegistryClient, type AuditEvent, type EventKind, type ProducerIdentity } from '../schemas/index.js';
import { Delivery } from './delivery.js';
import { Dispatcher } from './dispatcher.js';
import { Execution, systemClock, type Clock, type EventMeta, type ExecutionHost } from './execution.js';
import { producerIdentity } from './identity.js';
import { validateStart } from './input-validation.js';
import { KafkaSender } from './kafka-sender.js';
import type { ProducerLogger } from './logger.js';
import { ProducerMetrics } from './metrics.js';
import { defaultSpoolDir, formerDefaultSpoolDir, resolveProducerOptions, type ProducerOptions, type ResolvedProducerOptions } from './options.js';
import { PayloadEncoder } from './payloads.js';
import { PiiPolicy } from './pii.js';
import { auditUnavailable, producerClosed } from './producer-errors.js';
import { RecordQueue, type QueuedRecord } from './record-queue.js';
import { deferred } from './signal.js';
import { Spool } from './spool.js';
import { SpoolReplayer } from './spool-replayer.js';
import type { AuditReceipt, DeliveryOutcome, FlushResult, StartExecutionInput } from './types.js';

/** Kafka record headers: how PII fields were written (absent: cleartext), and whether there were any (absent: none). */
export const PII_MODE_HEADER = 'auditline-pii-mode';
export const PII_FOUND_HEADER = 'auditline-pii-found';

interface Prepared {
  queued: QueuedRecord;
  kind: EventKind;
  sequence: number;
}

const noop = (): void => {};

/**
 * The audit producer a workflow service embeds: starts executions, queues
 * their events in order, delivers them in batches (see Delivery) and keeps
 * a durable spool for when Kafka is away. Create it with
 * createAuditProducer(); close() it before the process exits.
 */
export class AuditProducer {
  readonly options: ResolvedProducerOptions;
  readonly identity: ProducerIdentity;
  private readonly logger: ProducerLogger;
  private readonly metrics: ProducerMetrics;
  private readonly codec: AuditEventCodec;
  private readonly sender: KafkaSender;
  private readonly queue: RecordQueue;
  private readonly dispatcher: Dispatcher;
  private readonly host: ExecutionHost<Prepared>;
  /** The two header sets an event can carry (PII found or not), shared by every record. */
  private readonly headers: Readonly<Record<'found' | 'none', Readonly<Record<string, string>>>>;
  private spool: Spool | undefined;
  private replayer: SpoolReplayer | undefined;
  private readyPromise: Promise<void> | undefined;
  private spoolOpening: Promise<void> | undefined;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closing: Promise<FlushResult> | undefined;

  /** Use createAuditProducer(); this takes already resolved options. */
  constructor(options: ResolvedProducerOptions, clock: Clock = systemClock) {
    this.options = options;
    this.identity = producerIdentity(options.service);
    this.logger = options.logger;
    this.metrics = new ProducerMetrics(options.metrics);
    const registry = new RegistryClient({ url: options.schemaRegistryUrl, ...options.schemaRegistryAuth });
    this.codec = new AuditEventCodec(registry, options.topic);
    this.sender = new KafkaSender(options, this.logger);
    this.queue = new RecordQueue(options.maxQueuedEvents, options.maxQueuedBytes, options.maxWaitingEvents);
    // Default values are not sent (absent = cleartext / not found): each header
    // costs kafkajs ~4 us of encoding per record, a third of a record's cost.
    const mode: Record<string, string> = options.piiMode === 'cleartext' ? {} : { [PII_MODE_HEADER]: options.piiMode };
    this.headers = {
      found: Object.freeze({ ...mode, [PII_FOUND_HEADER]: 'true' }),
      none: Object.freeze({ ...mode }),
    };
    const delivery = new Delivery(options.ack, this.sender, () => this.spool, () => this.replayer?.wake(), this.metrics, this.logger, async () => this.replayer?.drain(options.flushTimeoutMs));
    this.dispatcher = new Dispatcher(this.queue, options, (batch) => delivery.deliver(batch), clock.monotonic);
    this.dispatcher.start();
    const payloads = new PayloadEncoder(new PiiPolicy(options.piiFields, options.piiMode, options.piiHashKey), options.maxPayloadBytes, () =>
      this.metrics.truncated(),
    );
    this.host = {
      identity: this.identity,
      payloads,
      policy: options.onAuditFailure,
      clock,
      assertOpen: (call) => this.assertOpen(call),
      prepare: (event, meta) => this.prepare(event, meta),
      submit: (prepared) => this.submit(prepared),
      startExecution: (input) => this.startExecution(input),
    };
  }

  /**
   * Registers the schema (once) and opens the spool, claiming and replaying
   * what a previous process left there. Runs on its own from
   * createAuditProducer(); startExecution() waits for it. Rejects with
   * REGISTRY_UNAVAILABLE (retriable), a SCHEMA_* code or SPOOL_FAILED; a
   * later call tries again.
   */
  ready(): Promise<void> {
    if (this.state === 'closed') return Promise.reject(producerClosed('ready'));
    this.readyPromise ??= Promise.all([this.codec.init(), this.openSpool()]).then(noop, (err: unknown) => {
      this.readyPromise = undefined;
      throw err;
    });
    return this.readyPromise;
  }

  /**
   * Starts an execution: validates the input (PRODUCER_INVALID_INPUT),
   * records ExecutionStarted and resolves with the execution once that
   * event is acknowledged per the `ack` option.
   */
  async startExecution(input: StartExecutionInput): Promise<Execution> {
    this.assertOpen('startExecution');
    // Validated before start-up so that bad input fails the same way whether or not the registry answers.
    const valid = validateStart(input);
    await this.ready();
    const { execution, ack } = Execution.beginValidated(this.host, valid);
    execution.started = await ack;
    return execution;
  }

  /**
   * Resolves once every event recorded so far was acknowledged by Kafka,
   * or, when Kafka is unavailable, is in the spool: `spooledEvents` says
   * how many still wait there. Waits at most flushTimeoutMs for the spool.
   */
  async flush(): Promise<FlushResult> {
    this.assertOpen('flush');
    return this.flushAll();
  }

  /**
   * Refuses new events at once, flushes, then disconnects and closes the
   * spool (whatever is still spooled stays on disk for the next producer on
   * this spoolDir). Calling it again returns the same result; every other
   * call afterwards throws PRODUCER_CLOSED.
   */
  close(): Promise<FlushResult> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<FlushResult> {
    this.state = 'closing';
    await this.readyPromise?.catch(noop);
    await this.spoolOpening?.catch(noop);
    await this.flushAll();
    await this.dispatcher.stop();
    await this.replayer?.stop();
    await this.sender.close();
    // Counted once the replayer stopped: a batch in flight during flush may have been acknowledged since.
    const result: FlushResult = { spooledEvents: this.spool?.pendingEvents ?? 0 };
    await this.spool?.close();
    // What is left belongs to the next producer on this spoolDir, which counts it when it claims it.
    this.metrics.spooled(-result.spooledEvents);
    this.state = 'closed';
    if (result.spooledEvents > 0) {
      this.logger.warn({ spooledEvents: result.spooledEvents, spoolDir: this.spool?.dir }, 'audit producer closed with events still spooled; the next producer on this spoolDir replays them');
    } else {
      this.logger.info({ service: this.options.service }, 'audit producer closed');
    }
    return result;
  }

  private async flushAll(): Promise<FlushResult> {
    await this.readyPromise?.catch(noop);
    await this.dispatcher.drain();
    if (this.replayer && this.spool && this.spool.pendingEvents > 0) await this.replayer.drain(this.options.flushTimeoutMs);
    return { spooledEvents: this.spool?.pendingEvents ?? 0 };
  }

  private openSpool(): Promise<void> {
    const dir = this.options.spoolDir;
    if (dir === false) return Promise.resolve();
    this.spoolOpening ??= (async () => {
      // With the default directory, segments left in the former default (os.tmpdir()) are replayed too.
      const adoptFrom = dir === defaultSpoolDir(this.options.service) ? { adoptFrom: formerDefaultSpoolDir(this.options.service) } : {};
      const spool = await Spool.open({ dir, instanceId: this.identity.instance_id, maxBytes: this.options.maxSpoolBytes, logger: this.logger, ...adoptFrom });
      if (this.state !== 'open') {
        await spool.close();
        return;
      }
      this.spool = spool;
      this.metrics.spooled(spool.pendingEvents);
      this.replayer = new SpoolReplayer(
        spool,
        this.sender,
        {
          maxBatchEvents: this.options.maxBatchEvents,
          maxBatchBytes: this.options.maxBatchBytes,
          backoffMs: this.options.replayBackoffMs,
          backoffMaxMs: this.options.replayBackoffMaxMs,
        },
        this.metrics,
        this.logger,
      );
      this.replayer.start();
    })().catch((err: unknown) => {
      this.spoolOpening = undefined;
      throw err;
    });
    return this.spoolOpening;
  }

  private assertOpen(call: string): void {
    if (this.state !== 'open') throw producerClosed(call);
  }

  private prepare(event: AuditEvent, meta: EventMeta): Prepared {
    this.assertOpen('record');
    const value = this.codec.encode(event);
    const key = Buffer.from(event.execution_id, 'utf8');
    const headers = meta.piiFound ? this.headers.found : this.headers.none;
    const record = { key, value, headers };
    return {
      queued: {
        record,
        bytes: recordBytes(record),
        enqueuedAt: 0,
        ack: deferred(),
        eventId: event.event_id,
        executionId: event.execution_id,
      },
      kind: meta.kind,
      sequence: event.sequence,
    };
  }

  private submit(prepared: Prepared): Promise<AuditReceipt> {
    const { queued, kind, sequence } = prepared;
    queued.enqueuedAt = this.host.clock.monotonic();
    this.metrics.eventAccepted(kind);
    if (this.queue.push(queued)) this.dispatcher.wake();
    else {
      queued.ack.reject(
        auditUnavailable(`${this.queue.total} events already wait in memory (maxQueuedEvents ${this.options.maxQueuedEvents} + maxWaitingEvents ${this.options.maxWaitingEvents}): Kafka and the spool are not keeping up`, undefined),
      );
    }
    const receipt = (outcome: DeliveryOutcome): AuditReceipt => ({ eventId: queued.eventId, executionId: queued.executionId, sequence, outcome });
    return queued.ack.promise.then(
      (outcome) => {
        this.metrics.eventSettled();
        return receipt(outcome);
      },
      (err: unknown) => {
        this.metrics.eventSettled();
        this.metrics.lost(1, isAuditlineError(err, 'AUDIT_REJECTED') ? 'rejected' : 'unavailable');
        if (this.options.onAuditFailure === 'throw') throw err;
        this.logger.error(
          { eventId: queued.eventId, executionId: queued.executionId, sequence, code: isAuditlineError(err) ? err.code : undefined, error: errorMessage(err) },
          'audit event lost (onAuditFailure continue)',
        );
        return receipt('dropped');
      },
    );
  }
}

/**
 * Creates an audit producer. Options are validated here (throws
 * PRODUCER_INVALID_OPTIONS naming the option); the schema registration and
 * the replay of a previous spool start in the background at once.
 */
export function createAuditProducer(options: ProducerOptions): AuditProducer {
  const producer = new AuditProducer(resolveProducerOptions(options));
  producer.ready().catch((err: unknown) => {
    producer.options.logger.warn({ error: errorMessage(err) }, 'audit producer not ready yet; startExecution() will try again');
  });
  return producer;
}
