import { randomUUID } from 'node:crypto';
import { errorMessage, isAuditlineError } from '../core/errors.js';
import { EVENT_KINDS, payloadOf, SCHEMA_VERSION, type AuditEvent, type EventKind, type EventPayloads, type Payload, type ProducerIdentity } from '../schemas/index.js';
import type { AuditFailurePolicy } from './options.js';
import type { PayloadEncoder } from './payloads.js';
import { executionFinished, finishIncomplete, invalidInput } from './producer-errors.js';
import {
  toMillis,
  validateDecision,
  validateFinishOptions,
  validateFinishStatus,
  validateRecordStep,
  validateStart,
  validateStepName,
  validateStepOptions,
} from './input-validation.js';
import type { AuditReceipt, DecisionInput, FinishOptions, FinishStatus, RecordStepInput, StartChildInput, StartExecutionInput, StepOptions } from './types.js';

/** Wall clock for timestamps, monotonic clock for durations; injectable for tests. */
export interface Clock {
  now(): number;
  monotonic(): number;
}
export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/** What an event looks like to the host before it is queued. */
export interface EventMeta {
  kind: EventKind;
  piiFound: boolean;
}

/**
 * The producer as an execution sees it. `prepare` encodes synchronously
 * (throwing ENCODE_FAILED or PRODUCER_CLOSED before a sequence number is
 * spent); `submit` queues the prepared event and resolves per the ack mode
 * and failure policy.
 */
export interface ExecutionHost<P = unknown> {
  readonly identity: ProducerIdentity;
  readonly payloads: PayloadEncoder;
  readonly policy: AuditFailurePolicy;
  readonly clock: Clock;
  assertOpen(call: string): void;
  prepare(event: AuditEvent, meta: EventMeta): P;
  submit(prepared: P): Promise<AuditReceipt>;
  startExecution(input: StartExecutionInput): Promise<Execution>;
}

const noop = (): void => {};

/**
 * The union branch name of each event kind, as payloadOf() writes it, built
 * once: payloadOf() concatenates a new key string per call, and encoding a
 * payload under such a key costs the Avro encoder about 1 µs more per event.
 */
const PAYLOAD_NAMES = Object.fromEntries(EVENT_KINDS.map((kind) => [kind, Object.keys(payloadOf(kind, {} as never))[0]!])) as Record<EventKind, string>;

function wrapPayload<K extends EventKind>(kind: K, value: EventPayloads[K]): Payload {
  return { [PAYLOAD_NAMES[kind]]: value } as unknown as Payload;
}

/**
 * One workflow execution. Every call validates its arguments first
 * (PRODUCER_INVALID_INPUT, nothing recorded), then records one event with
 * the next sequence number (1, 2, ... without gaps) keyed by executionId.
 */
export class Execution {
  readonly executionId: string;
  readonly workflowId: string;
  readonly correlationId: string | null;
  readonly parentExecutionId: string | null;
  /** Receipt of the ExecutionStarted event; set once startExecution() resolved. */
  started!: AuditReceipt;

  private sequence = 0;
  private nextStepId = 1;
  private lastStartedStepId: number | null = null;
  private readonly stepIdsByName = new Map<string, number>();
  private finished = false;
  private lost = 0;
  private readonly startTime: number;
  private readonly startMonotonic: number;
  /** PII strings seen in this execution's payloads (hash/mask modes), to scrub its free text. */
  private readonly known = new Set<string>();

  /** Validates, records ExecutionStarted and returns the execution with the start receipt pending. */
  static begin(host: ExecutionHost, input: StartExecutionInput): { execution: Execution; ack: Promise<AuditReceipt> } {
    host.assertOpen('startExecution');
    return Execution.beginValidated(host, validateStart(input));
  }

  /** begin() for input that already went through validateStart (the producer validates before it awaits start-up). */
  static beginValidated(host: ExecutionHost, valid: StartExecutionInput): { execution: Execution; ack: Promise<AuditReceipt> } {
    host.assertOpen('startExecution');
    const execution = new Execution(host, valid);
    const data = host.payloads.json(valid.input, 'startExecution.input', execution.known);
    const ack = execution.emit(
      'ExecutionStarted',
      {
        workflow_name: valid.workflowName ?? valid.workflowId,
        workflow_version: valid.workflowVersion ?? '0',
        trigger: valid.trigger,
        triggered_by: { kind: valid.triggeredBy.kind, id: valid.triggeredBy.id },
        start_time: execution.startTime,
        input: data.text,
        input_truncation: data.truncation,
        parent_execution_id: execution.parentExecutionId,
      },
      data.piiFound,
    );
    void ack.then((receipt) => (execution.started = receipt), noop);
    return { execution, ack };
  }

  private constructor(
    private readonly host: ExecutionHost,
    input: StartExecutionInput,
  ) {
    this.executionId = input.executionId?.toLowerCase() ?? randomUUID();
    this.workflowId = input.workflowId;
    this.correlationId = input.correlationId ?? null;
    this.parentExecutionId = input.parentExecutionId?.toLowerCase() ?? null;
    this.startTime = host.clock.now();
    this.startMonotonic = host.clock.monotonic();
  }

  /** True once finish() recorded the end. */
  get isFinished(): boolean {
    return this.finished;
  }

  /**
   * Runs `fn` as one step: times it on a monotonic clock, records a
   * StepFinished event with its output, or with its error and rethrows that
   * error. The input is captured (and checked) before `fn` runs; an output
   * that cannot be serialized throws PRODUCER_INVALID_INPUT after `fn` ran
   * and records nothing.
   */
  async step<T>(name: string, fn: () => T | Promise<T>, options: StepOptions = {}): Promise<T> {
    this.assertRecordable('step');
    const stepName = validateStepName(name);
    const opts = validateStepOptions(options);
    if (typeof fn !== 'function') throw invalidInput('step fn', 'must be a function');
    const input = this.host.payloads.json(opts.input, 'step input', this.known);
    const attempt = opts.attempt ?? 1;
    const stepId = this.allocateStepId(stepName, attempt, opts.stepId);
    const startTime = this.host.clock.now();
    const t0 = this.host.clock.monotonic();
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      const durationMs = this.elapsed(t0);
      await this.emitStep('step', { stepId, stepName, attempt, startTime, durationMs, status: 'failed', input, output: null, error: err });
      throw err;
    }
    const durationMs = this.elapsed(t0);
    const output = this.host.payloads.json(result, 'step output', this.known);
    await this.emitStep('step', { stepId, stepName, attempt, startTime, durationMs, status: 'success', input, output, error: undefined });
    return result;
  }

  /** Records a step that ran elsewhere, from its start and end times. */
  async recordStep(step: RecordStepInput): Promise<AuditReceipt> {
    this.assertRecordable('recordStep');
    const s = validateRecordStep(step);
    const input = this.host.payloads.json(s.input, 'recordStep.input', this.known);
    const output = s.output === undefined && s.status !== 'success' ? null : this.host.payloads.json(s.output, 'recordStep.output', this.known);
    const attempt = s.attempt ?? 1;
    const stepId = this.allocateStepId(s.name, attempt, s.stepId);
    const startTime = toMillis(s.startTime);
    return this.emitStep('recordStep', {
      stepId,
      stepName: s.name,
      attempt,
      startTime,
      durationMs: toMillis(s.endTime) - startTime,
      status: s.status,
      input,
      output,
      error: s.error,
    });
  }

  /**
   * Records which branch was taken. Validation is synchronous (a bad
   * argument throws at once); the returned promise is the acknowledgement.
   * Not awaiting it is safe: a lost event is then reported by finish().
   */
  decision(decision: DecisionInput): Promise<AuditReceipt> {
    this.assertRecordable('decision');
    const d = validateDecision(decision);
    const values = this.host.payloads.json(d.values ?? {}, 'decision.values', this.known);
    const reason = this.host.payloads.text(d.reason ?? '', this.known);
    return this.emit(
      'DecisionRecorded',
      {
        step_id: d.stepId === undefined ? this.lastStartedStepId : d.stepId,
        branch_condition: d.condition,
        branch_taken: d.taken,
        branch_reason: reason.text,
        condition_values: values.text,
      },
      values.piiFound || reason.piiFound,
    );
  }

  /**
   * Records the end of the execution; a second call throws
   * EXECUTION_FINISHED. With onAuditFailure 'throw' it rejects with
   * AUDIT_UNAVAILABLE when any earlier event of this execution was lost,
   * even if that loss was already reported to its own call.
   */
  async finish(status: FinishStatus, options: FinishOptions = {}): Promise<AuditReceipt> {
    this.assertRecordable('finish');
    const finalStatus = validateFinishStatus(status);
    const opts = validateFinishOptions(options);
    const output = opts.output === undefined ? null : this.host.payloads.json(opts.output, 'finish output', this.known);
    const error = opts.error === undefined ? null : this.host.payloads.error(opts.error, this.known);
    const durationMs = this.elapsed(this.startMonotonic);
    const ack = this.emit(
      'ExecutionFinished',
      {
        end_time: this.startTime + durationMs,
        duration_ms: durationMs,
        status: finalStatus,
        output: output?.text ?? null,
        error: error?.info ?? null,
      },
      (output?.piiFound ?? false) || (error?.piiFound ?? false),
    );
    this.finished = true;
    let receipt: AuditReceipt;
    try {
      receipt = await ack;
    } catch (err) {
      if (!isAuditlineError(err, 'AUDIT_UNAVAILABLE')) throw err;
      throw finishIncomplete(this.executionId, `its ExecutionFinished event was not recorded (${errorMessage(err)})`, err, { lostEvents: this.lost });
    }
    if (this.lost > 0 && this.host.policy === 'throw') {
      throw finishIncomplete(this.executionId, `${this.lost} earlier event(s) were lost (ExecutionFinished was recorded, ${receipt.outcome})`, undefined, {
        lostEvents: this.lost,
        finishOutcome: receipt.outcome,
      });
    }
    return receipt;
  }

  /** Starts a child execution whose parent is this one (and whose correlation id defaults to this one's). */
  async startChild(input: StartChildInput): Promise<Execution> {
    this.assertRecordable('startChild');
    const correlationId = input?.correlationId ?? this.correlationId ?? undefined;
    return this.host.startExecution({ ...input, parentExecutionId: this.executionId, ...(correlationId ? { correlationId } : {}) });
  }

  private emitStep(
    call: string,
    s: {
      stepId: number;
      stepName: string;
      attempt: number;
      startTime: number;
      durationMs: number;
      status: 'success' | 'failed' | 'skipped';
      input: { text: string; truncation: EventPayloads['StepFinished']['data_truncation']; piiFound: boolean };
      output: { text: string; truncation: EventPayloads['StepFinished']['data_truncation']; piiFound: boolean } | null;
      error: unknown;
    },
  ): Promise<AuditReceipt> {
    // A step that ends after finish() has nothing left to belong to.
    this.assertRecordable(call);
    const error = s.error === undefined ? null : this.host.payloads.error(s.error, this.known);
    return this.emit(
      'StepFinished',
      {
        step_id: s.stepId,
        step_name: s.stepName,
        attempt: s.attempt,
        start_time: s.startTime,
        end_time: s.startTime + s.durationMs,
        duration_ms: s.durationMs,
        status: s.status,
        input_data: s.input.text,
        output_data: s.output?.text ?? null,
        // One field describes one payload: the output when it was cut, else the input.
        data_truncation: s.output?.truncation ?? s.input.truncation,
        error: error?.info ?? null,
      },
      s.input.piiFound || (s.output?.piiFound ?? false) || (error?.piiFound ?? false),
    );
  }

  /** Builds, encodes and queues one event; the sequence number is spent only once encoding succeeded. */
  private emit<K extends EventKind>(kind: K, value: EventPayloads[K], piiFound: boolean): Promise<AuditReceipt> {
    const event: AuditEvent = {
      event_id: randomUUID(),
      event_time: this.host.clock.now(),
      execution_id: this.executionId,
      workflow_id: this.workflowId,
      sequence: this.sequence + 1,
      correlation_id: this.correlationId,
      producer: this.host.identity,
      schema_version: SCHEMA_VERSION,
      payload: wrapPayload(kind, value),
    };
    const prepared = this.host.prepare(event, { kind, piiFound });
    this.sequence += 1;
    const ack = this.host.submit(prepared).then(
      (receipt) => {
        if (receipt.outcome === 'dropped') this.lost += 1;
        return receipt;
      },
      (err: unknown) => {
        this.lost += 1;
        throw err;
      },
    );
    // Callers may leave a decision un-awaited; its failure must not crash the process (finish() reports it).
    ack.catch(noop);
    return ack;
  }

  private assertRecordable(call: string): void {
    this.host.assertOpen(call);
    if (this.finished) throw executionFinished(this.executionId, call);
  }

  private allocateStepId(name: string, attempt: number, explicit: number | undefined): number {
    let id: number;
    if (explicit !== undefined) id = explicit;
    else if (attempt > 1 && this.stepIdsByName.has(name)) id = this.stepIdsByName.get(name)!;
    else id = this.nextStepId;
    this.stepIdsByName.set(name, id);
    this.nextStepId = Math.max(this.nextStepId, id + 1);
    this.lastStartedStepId = id;
    return id;
  }

  private elapsed(since: number): number {
    return Math.max(0, Math.round(this.host.clock.monotonic() - since));
  }
}
