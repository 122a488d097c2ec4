import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadEndpoints } from '../../core/endpoints.js';
import { isAuditlineError } from '../../core/errors.js';
import { auditEventSchema, AuditEventCodec, frame, RegistryClient, sampleExecution, unwrapPayload, valueSubject, type AuditEvent } from '../../schemas/index.js';
import { uniqueName } from '../helpers/names.js';

const registry = new RegistryClient(loadEndpoints().registry);
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

test('every event type round-trips through the registry in the Confluent wire format', async () => {
  const codec = new AuditEventCodec(registry, uniqueName('it-codec'));
  const id = await codec.init();
  const events = [...sampleExecution({ status: 'success' }), ...sampleExecution({ status: 'failed' })];
  const kinds = new Set<string>();
  for (const event of events) {
    const bytes = codec.encode(event);
    assert.equal(bytes[0], 0, 'magic byte');
    assert.equal(bytes.readInt32BE(1), id, 'schema id in the header');
    const decoded = await codec.decode(bytes);
    assert.deepEqual(plain(decoded), event);
    kinds.add(unwrapPayload(decoded.payload).kind);
  }
  assert.equal(kinds.size, 4);
});

test('a record that does not match the schema fails with ENCODE_FAILED naming the field', async () => {
  const codec = new AuditEventCodec(registry, uniqueName('it-codec'));
  await codec.init();
  const [started] = sampleExecution();
  const missing = structuredClone(started!) as unknown as Record<string, unknown>;
  delete missing.workflow_id;
  assert.throws(() => codec.encode(missing as unknown as AuditEvent), (e) => isAuditlineError(e, 'ENCODE_FAILED') && /at workflow_id \(expected string\)/.test(e.message));
  const wrongEnum = structuredClone(started!);
  (wrongEnum.payload as Record<string, { trigger: string }>)['io.auditline.events.ExecutionStarted']!.trigger = 'carrier-pigeon';
  assert.throws(
    () => codec.encode(wrongEnum),
    (e) => isAuditlineError(e, 'ENCODE_FAILED') && /payload\.io\.auditline\.events\.ExecutionStarted\.trigger \(expected enum/.test(e.message) && !e.message.includes('carrier-pigeon'),
  );
});

test('events written with a newer compatible schema are read by the current code', async () => {
  const topic = uniqueName('it-evolve');
  const reader = new AuditEventCodec(registry, topic);
  await reader.init();
  // v2 adds an optional field to the envelope: BACKWARD compatible, so the registry accepts it.
  const raw = structuredClone(auditEventSchema().raw) as { fields: Record<string, unknown>[] };
  raw.fields.push({ name: 'tenant', type: ['null', 'string'], default: null, dataClass: 'internal', doc: 'added in v2' });
  const v2Id = await registry.register(valueSubject(topic), raw);
  const { default: avro } = await import('avsc');
  const v2 = avro.Type.forSchema(raw as never);
  const [event] = sampleExecution();
  const bytes = frame(v2Id, v2.toBuffer({ ...event, tenant: 'acme' }));
  const decoded = await reader.decode(bytes);
  assert.deepEqual(plain(decoded), event);
});

test('garbage and unknown schema ids fail decode with non-retriable errors', async () => {
  const codec = new AuditEventCodec(registry, uniqueName('it-codec'));
  const id = await codec.init();
  await assert.rejects(codec.decode(Buffer.from('{"json":"not avro"}')), (e) => isAuditlineError(e, 'WIRE_FORMAT_INVALID') && !e.retriable);
  await assert.rejects(codec.decode(frame(id, Buffer.from([0xff, 0xff, 0xff]))), (e) => isAuditlineError(e, 'DECODE_FAILED') && !e.retriable);
  await assert.rejects(codec.decode(frame(987654321, Buffer.from([1]))), (e) => isAuditlineError(e, 'SCHEMA_NOT_FOUND'));
});

test('events larger than the encoder scratch buffer, and small ones after them, round-trip intact', async () => {
  const codec = new AuditEventCodec(registry, uniqueName('it-codec'));
  await codec.init();
  const [started, step] = sampleExecution();
  const big = structuredClone(started!);
  const payload = (big.payload as Record<string, { input: string }>)['io.auditline.events.ExecutionStarted']!;
  payload.input = JSON.stringify({ blob: 'x'.repeat(200_000) });
  const bigBytes = codec.encode(big);
  const smallBytes = codec.encode(step!);
  assert.ok(bigBytes.length > 200_000);
  assert.deepEqual(plain(await codec.decode(bigBytes)), big);
  assert.deepEqual(plain(await codec.decode(smallBytes)), step);
  // Returned buffers are copies: encoding more events does not change earlier ones.
  codec.encode(started!);
  assert.deepEqual(plain(await codec.decode(smallBytes)), step);
});
