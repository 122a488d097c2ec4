import { auditEventSchema, invalidPaths, type AuditEvent, type ProducerIdentity } from '../../schemas/index.js';
import type { Clock, EventMeta, Execution, ExecutionHost } from '../../producers/execution.js';
import { Execution as ExecutionClass } from '../../producers/execution.js';
import { PayloadEncoder } from '../../producers/payloads.js';
import { PiiPolicy } from '../../producers/pii.js';
import { producerClosed } from '../../producers/producer-errors.js';
import type { AuditFailurePolicy, PiiMode } from '../../producers/options.js';
import type { AuditReceipt, StartExecutionInput } from '../../producers/types.js';

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  wall = Date.UTC(2025, 0, 1, 12, 0, 0);
  mono = 1_000;
  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.mono;
  }
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
}

/**
 * An execution host that keeps events in memory instead of sending them
 * (no sockets): every event is checked against the Avro schema, and the
 * outcome of each submit can be scripted to simulate lost events.
 */
export class MemoryHost implements ExecutionHost<{ event: AuditEvent; meta: EventMeta }> {
  readonly identity: ProducerIdentity = { service: 'unit', host: 'test-host', client_version: '0.0.0', instance_id: '00000000-0000-4000-8000-000000000000' };
  readonly payloads: PayloadEncoder;
  readonly clock = new ManualClock();
  readonly events: AuditEvent[] = [];
  readonly metas: EventMeta[] = [];
  closed = false;
  /** When set, submit() rejects with this error (policy throw) or resolves 'dropped' (policy continue). */
  failWith: Error | undefined;

  constructor(
    readonly policy: AuditFailurePolicy = 'throw',
    pii: { mode?: PiiMode; key?: string; fields?: string[] } = {},
    maxPayloadBytes = 256 * 1024,
  ) {
    this.payloads = new PayloadEncoder(
      new PiiPolicy(pii.fields ?? ['customer_email', 'customer_name', 'phone_number', 'billing_address'], pii.mode ?? 'cleartext', pii.key),
      maxPayloadBytes,
    );
  }

  assertOpen(call: string): void {
    if (this.closed) throw producerClosed(call);
  }

  prepare(event: AuditEvent, meta: EventMeta): { event: AuditEvent; meta: EventMeta } {
    this.assertOpen('record');
    const bad = invalidPaths(auditEventSchema().type, event);
    if (bad.length > 0) throw new Error(`event does not match the schema: ${bad.join('; ')}`);
    return { event, meta };
  }

  submit(prepared: { event: AuditEvent; meta: EventMeta }): Promise<AuditReceipt> {
    const receipt = (outcome: AuditReceipt['outcome']): AuditReceipt => ({
      eventId: prepared.event.event_id,
      executionId: prepared.event.execution_id,
      sequence: prepared.event.sequence,
      outcome,
    });
    if (this.failWith) {
      if (this.policy === 'throw') return Promise.reject(this.failWith);
      return Promise.resolve(receipt('dropped'));
    }
    this.events.push(prepared.event);
    this.metas.push(prepared.meta);
    return Promise.resolve(receipt('delivered'));
  }

  async startExecution(input: StartExecutionInput): Promise<Execution> {
    const { execution, ack } = ExecutionClass.begin(this, input);
    execution.started = await ack;
    return execution;
  }
}

/** The payload of an event, unwrapped, as a loose record for assertions. */
export function payload(event: AuditEvent): Record<string, unknown> {
  return Object.values(event.payload)[0] as Record<string, unknown>;
}

/** Short kind name of an event. */
export function kindOf(event: AuditEvent): string {
  return Object.keys(event.payload)[0]!.split('.').pop()!;
}
