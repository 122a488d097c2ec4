import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAuditlineError } from '../../core/errors.js';
import type { SourceRecord } from '../../core/service/index.js';
import { createHotstoreHandler } from '../../consumers/hotstore/handler.js';
import type { EventRows } from '../../consumers/hotstore/rows.js';
import { auditEventSchema, AuditEventCodec, frame, RegistryClient, sampleExecution } from '../../schemas/index.js';
import { laggingRegistry, settle } from '../helpers/lagging-registry.js';

const { type } = auditEventSchema();
const events = sampleExecution({ status: 'failed' });
const record = (offset: number, value: Buffer): SourceRecord => ({ topic: 'audit.events', partition: 0, offset: String(offset), key: Buffer.from('k'), value, headers: { 'auditline-tokenized': Buffer.from('v1') }, timestamp: '0' });

test('hot store (decodeOrDeadLetter, as alerts and the tokenizer): an id the registry does not know yet holds the batch until it does; one it never knows is dead-lettered after the window, the rest of the batch stored', async () => {
  const known = new Set([1]);
  const registry = await laggingRegistry(known);
  try {
    const written: EventRows[] = [];
    const handler = createHotstoreHandler({
      codec: new AuditEventCodec(new RegistryClient({ url: registry.url }, { unknownIdRetryMs: 1_500 }), 'audit.events'),
      writer: { write: async (rows) => ((written.push(...rows), { rejected: [] })) },
    });
    // Id 2: registered a moment ago, the follower learns it 150 ms into the window (1.5 s: wide enough for a loaded machine).
    setTimeout(() => known.add(2), 150);
    const late = await settle(handler, [record(0, frame(1, type.toBuffer(events[0]!))), record(1, frame(2, type.toBuffer(events[1]!))), record(2, frame(1, type.toBuffer(events[2]!)))]);
    assert.deepEqual(late.deadLetters, [], 'nothing dead-lettered for an id the registry learnt within the window');
    assert.ok(late.attempts > 1, 'the batch was retried while the id was unknown');
    assert.deepEqual(written.map((r) => r.eventId), [events[0]!.event_id, events[1]!.event_id, events[2]!.event_id]);

    written.length = 0;
    // Id 9 never exists (a poison record): dead-lettered once the window is over, its neighbours stored.
    const poison = await settle(handler, [record(3, frame(1, type.toBuffer(events[0]!))), record(4, frame(9, Buffer.from([2, 4, 6]))), record(5, frame(1, type.toBuffer(events[1]!)))]);
    assert.ok(poison.elapsedMs >= 1_500, `dead-lettered after ${poison.elapsedMs.toFixed(0)} ms, before the window was over`);
    assert.deepEqual(poison.deadLetters.map((d) => [d.record.offset, d.code]), [['4', 'SCHEMA_NOT_FOUND']]);
    assert.match(poison.deadLetters[0]!.reason, /^the writer schema id 9 in the record header is not registered in the schema registry \(still unknown \d+ ms after its first lookup\)$/);
    assert.deepEqual(written.map((r) => r.eventId), [events[0]!.event_id, events[1]!.event_id]);

    // The window runs from the id's first miss: the next record with id 9 is dead-lettered without waiting again.
    const again = await settle(handler, [record(6, frame(9, Buffer.from([1])))]);
    assert.equal(again.attempts, 1);
    assert.equal(again.deadLetters[0]?.code, 'SCHEMA_NOT_FOUND');
  } finally {
    await registry.close();
  }
});

test('a writer schema the registry holds but that is not usable Avro: SCHEMA_INVALID, not retried (errors.md), and the dead letter says so', async () => {
  const registry = await laggingRegistry(new Set([3]), new Map([[3, '{"type":"record","name":"Broken","fields":[{"name":"x","type":"no-such-type"}]}']]));
  try {
    const codec = new AuditEventCodec(new RegistryClient({ url: registry.url }), 'audit.events');
    await assert.rejects(codec.decode(frame(3, Buffer.from([0]))), (e) => isAuditlineError(e, 'SCHEMA_INVALID') && !e.retriable && /schema id 3 is not a usable Avro schema/.test(e.message));
  } finally {
    await registry.close();
  }
});
