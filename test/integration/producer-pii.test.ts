import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createAuditProducer, type PiiMode } from '../../producers/index.js';
import { unwrapPayload } from '../../schemas/index.js';
import { connection, createTopic, deleteTopic, readEvents, recordCount } from '../helpers/producer-kafka.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-dir.js';

const KEY = 'integration-hmac-key-0123456789abcdef';
const PII = {
  customer_email: 'ann.smith@example.com',
  customer_name: 'Annabel Smithson',
  phone_number: '+44 20 7946 0958',
  billing_address: { street: '221B Bakerstreet', city: 'Londonderry' },
};
const CLEARTEXT = ['ann.smith@example.com', 'Annabel Smithson', 'Smithson', '7946 0958', '221B Bakerstreet', 'Londonderry'];

/** Records one execution that carries PII everywhere it can: inputs, outputs, values, errors, reasons. */
async function recordWithPii(topic: string, piiMode: PiiMode): Promise<string> {
  const audit = createAuditProducer({
    ...connection,
    service: 'billing-worker',
    topic,
    piiMode,
    piiHashKey: KEY,
    spoolDir: tempDir('auditline-it-pii'),
  });
  const run = await audit.startExecution({
    workflowId: 'WF-003',
    trigger: 'webhook',
    triggeredBy: { kind: 'user', id: 'u-42' },
    input: { order: { id: 7, customer: { customer_email: PII.customer_email, customer_name: PII.customer_name } }, amount: 12000 },
  });
  await run.step('lookup', async () => ({ contacts: [{ phone_number: PII.phone_number, billing_address: PII.billing_address }] }), {
    input: { customer_email: PII.customer_email },
  });
  await assert.rejects(run.step('notify', async () => Promise.reject(new Error(`mailbox ${PII.customer_email} of ${PII.customer_name} is full`))));
  await run.decision({ condition: 'vip', taken: 'priority', reason: `${PII.customer_name} is a VIP`, values: { customer_name: PII.customer_name } });
  await run.finish('failed', { output: { billing_address: PII.billing_address }, error: new Error(`could not reach ${PII.customer_email}`) });
  await audit.close();
  return run.executionId;
}

for (const mode of ['hash', 'mask'] as const) {
  test(`piiMode ${mode}: no cleartext PII in any byte of any record read back from Kafka`, { timeout: 20_000 }, async () => {
    const topic = uniqueName(`it-producer-pii-${mode}`);
    await createTopic(topic, 1);
    const executionId = await recordWithPii(topic, mode);
    const records = await readEvents(topic, 5);
    assert.equal(await recordCount(topic), 5);
    for (const r of records) {
      const bytes = Buffer.concat([r.raw, Buffer.from(r.key), Buffer.from(JSON.stringify(r.headers))]);
      for (const clear of CLEARTEXT) assert.equal(bytes.indexOf(Buffer.from(clear)), -1, `${mode}: "${clear}" found in record ${r.event.sequence}`);
      assert.equal(r.headers['auditline-pii-mode'], mode);
    }
    assert.deepEqual(records.map((r) => r.headers['auditline-pii-found']), ['true', 'true', 'true', 'true', 'true']);
    assert.ok(records.every((r) => r.key === executionId));

    const start = unwrapPayload(records[0]!.event.payload).value as { input: string };
    const customer = (JSON.parse(start.input) as { order: { customer: Record<string, unknown> } }).order.customer;
    if (mode === 'hash') {
      const hmac = (v: string) => ({ $pii: `hmac-sha256:${createHmac('sha256', KEY).update(v).digest('hex')}` });
      assert.deepEqual(customer, { customer_email: hmac(PII.customer_email), customer_name: hmac(PII.customer_name) }, 'equal values keep equal tokens');
    } else {
      assert.deepEqual(customer, { customer_email: 'a***@example.com', customer_name: 'A*** S***' });
    }
    await deleteTopic(topic);
  });
}
