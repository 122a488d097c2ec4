import { createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import type { AccessRecord } from '../../consumers/tokenizer/audit-log.js';
import { newDataKey, newKeyId } from '../../consumers/tokenizer/crypto.js';
import type { SubjectKey } from '../../consumers/tokenizer/key-store.js';
import { payloadOf, SCHEMA_VERSION, type AuditEvent, type EventKind, type EventPayloads } from '../../schemas/index.js';

/** Random key material as the tokenizer's settings take it (base64). */
export function testKeys(): { masterKey: string; tokenKey: string } {
  return { masterKey: randomBytes(32).toString('base64'), tokenKey: randomBytes(32).toString('base64') };
}

/** Subject keys in memory, for unit tests (the same two lookups as SubjectKeyStore). */
export class MemoryKeys {
  readonly byId = new Map<string, SubjectKey>();
  readonly bySubject = new Map<string, SubjectKey>();

  async activeKeys(subjects: Iterable<string>): Promise<Map<string, SubjectKey>> {
    const out = new Map<string, SubjectKey>();
    for (const subject of subjects) {
      let key = this.bySubject.get(subject);
      if (!key) {
        key = { subject, keyId: newKeyId(), key: createSecretKey(newDataKey()), createdAt: Date.now() };
        this.bySubject.set(subject, key);
        this.byId.set(key.keyId, key);
      }
      out.set(subject, key);
    }
    return out;
  }

  async keysById(ids: readonly string[]): Promise<Map<string, SubjectKey>> {
    return new Map(ids.flatMap((id) => (this.byId.has(id) ? [[id, this.byId.get(id)!] as const] : [])));
  }

  /** Crypto-shredding in memory. */
  erase(subject: string): void {
    const key = this.bySubject.get(subject);
    if (key) this.byId.delete(key.keyId);
    this.bySubject.delete(subject);
  }
}

/** An access log in memory. */
export class MemoryAccessLog {
  readonly records: AccessRecord[] = [];
  async recordAccess(record: AccessRecord): Promise<void> {
    this.records.push(record);
  }
}

export interface PiiExecutionSpec {
  email?: string;
  name?: string;
  phone?: string;
  status?: 'success' | 'failed';
  workflowId?: string;
}

/**
 * One execution whose payloads carry PII the tokenizer must find: the input
 * names the customer (e-mail, name, nested phone and billing address), a
 * step input repeats the e-mail deep inside, a failed step's error message
 * and a decision reason quote the e-mail and phone in free text, and the
 * decision's branch condition (a sox field) compares the customer's name.
 */
export function piiExecution(spec: PiiExecutionSpec = {}): AuditEvent[] {
  const executionId = randomUUID();
  const email = spec.email ?? `canary-${randomBytes(4).toString('hex')}@example.com`;
  const name = spec.name ?? `Canaryname ${randomBytes(3).toString('hex')}`;
  const phone = spec.phone ?? '+49 30 5550 1234';
  const failed = spec.status === 'failed';
  const t0 = Date.now() - 10_000;
  let sequence = 0;
  const producer = { service: 'tokenizer-test', host: 'test-host', client_version: '0.1.0', instance_id: randomUUID() };
  const event = <K extends EventKind>(kind: K, at: number, value: EventPayloads[K]): AuditEvent => ({
    event_id: randomUUID(),
    event_time: at,
    execution_id: executionId,
    workflow_id: spec.workflowId ?? 'WF-003',
    sequence: ++sequence,
    correlation_id: `trace-${executionId.slice(0, 8)}`,
    producer,
    schema_version: SCHEMA_VERSION,
    payload: payloadOf(kind, value),
  });
  return [
    event('ExecutionStarted', t0, {
      workflow_name: 'Invoice sync',
      workflow_version: '1.4.0',
      trigger: 'webhook',
      triggered_by: { kind: 'user', id: 'u-42' },
      start_time: t0,
      input: JSON.stringify({
        customer_email: email,
        customer_name: name,
        contact: { phone_number: phone, billing_address: { street: 'Canarystreet 7', city: 'Berlin' } },
        order_id: 'ORD-2024-000123',
        amount: 12000,
        request_id: executionId,
      }),
      input_truncation: null,
      parent_execution_id: null,
    }),
    event('StepFinished', t0 + 40, {
      step_id: 1,
      step_name: 'charge-card',
      attempt: 1,
      start_time: t0 + 1,
      end_time: t0 + 40,
      duration_ms: 39,
      status: failed ? 'failed' : 'success',
      input_data: JSON.stringify({ order: { lines: [{ sku: 'A-1', qty: 2 }], recipient: { Customer_Email: email } }, note: `notify ${email} when done` }),
      output_data: failed ? null : JSON.stringify({ charged: true, amount: 12000 }),
      data_truncation: null,
      error: failed ? { type: 'PaymentError', message: `card of ${email} declined; call ${phone} after 2024-01-15` } : null,
    }),
    event('DecisionRecorded', t0 + 41, {
      step_id: 1,
      // A condition that names the customer: a sox free-text field the tokenizer must scan too.
      branch_condition: `amount > 10000 || customer_name == "${name}"`,
      branch_taken: 'manual-approval',
      branch_reason: `amount=12000 exceeds 10000 for ${email}`,
      condition_values: JSON.stringify({ amount: 12000 }),
    }),
    event('ExecutionFinished', t0 + 50, {
      end_time: t0 + 50,
      duration_ms: 50,
      status: failed ? 'failed' : 'success',
      output: failed ? null : JSON.stringify({ approved: false }),
      error: failed ? { type: 'PaymentError', message: 'step charge-card failed' } : null,
    }),
  ];
}

/** The distinctive PII values of an execution built by {@link piiExecution}, for leak checks. */
export function canaryValues(events: readonly AuditEvent[]): string[] {
  const input = JSON.parse((Object.values(events[0]!.payload)[0] as { input: string }).input) as { customer_email: string; customer_name: string; contact: { phone_number: string } };
  const digits = input.contact.phone_number.replace(/\D/g, '');
  return [input.customer_email, input.customer_name, input.contact.phone_number, digits, 'Canarystreet'];
}
