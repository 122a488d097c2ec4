import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ClickHouseError } from '@clickhouse/client';
import { AuditlineError } from '../../core/errors.js';
import type { SourceRecord } from '../../core/service/index.js';
import { classifyClickHouseError } from '../../consumers/hotstore/clickhouse-errors.js';
import { createHotstoreHandler } from '../../consumers/hotstore/handler.js';
import { decodeFailureReason } from '../../core/service/index.js';
import type { EventRows } from '../../consumers/hotstore/rows.js';
import { sampleExecution, type AuditEvent } from '../../schemas/index.js';

const events = sampleExecution({ status: 'failed' });
let offset = 0;
const record = (value: Buffer | null): SourceRecord => ({ topic: 'audit.events', partition: 0, offset: String(offset++), key: Buffer.from('k'), value, headers: {}, timestamp: '0' });
// A fake codec: the value names the sample event to return, or the error to throw.
const codec = {
  async decode(message: Buffer): Promise<AuditEvent> {
    const text = message.toString();
    if (text === 'garbage') throw new AuditlineError('WIRE_FORMAT_INVALID', 'magic byte is 103, expected 0');
    if (text === 'broken-avro') throw new AuditlineError('DECODE_FAILED', 'cannot decode a message written with schema id 7: invalid "customer_email": ann@example.com', { details: { schemaId: 7 } });
    if (text === 'registry-down') throw new AuditlineError('REGISTRY_UNAVAILABLE', 'down', { retriable: true });
    if (text === 'future') return { ...events[0]!, event_time: Date.UTC(2500, 0, 1) };
    return events[Number(text)]!;
  },
};

function writer(rejectEventIds: string[] = []) {
  const written: EventRows[][] = [];
  return {
    written,
    async write(rows: readonly EventRows[]) {
      written.push([...rows]);
      return { rejected: rows.flatMap((r, index) => (rejectEventIds.includes(r.eventId) ? [{ index, reason: `ClickHouse refused the rows of event ${r.eventId}: CANNOT_PARSE_TEXT (code 6)` }] : [])) };
    },
  };
}

test('a batch with poison records: good events are written, every bad record becomes a dead letter with its code and a value-free reason', async () => {
  const w = writer([events[2]!.event_id]);
  const handle = createHotstoreHandler({ codec, writer: w });
  const batch = [record(Buffer.from('0')), record(Buffer.from('garbage')), record(null), record(Buffer.from('1')), record(Buffer.from('broken-avro')), record(Buffer.from('future')), record(Buffer.from('2')), record(Buffer.from('3'))];
  const { deadLetters } = await handle(batch, { signal: new AbortController().signal });
  assert.deepEqual(w.written[0]!.map((r) => r.eventId), [0, 1, 2, 3].map((i) => events[i]!.event_id));
  assert.deepEqual(
    deadLetters.map((d) => [d.record.offset, d.code]),
    [
      [batch[1]!.offset, 'WIRE_FORMAT_INVALID'],
      [batch[2]!.offset, 'WIRE_FORMAT_INVALID'],
      [batch[4]!.offset, 'DECODE_FAILED'],
      [batch[5]!.offset, 'ROW_REJECTED'],
      [batch[6]!.offset, 'ROW_REJECTED'],
    ],
  );
  assert.match(deadLetters[1]!.reason, /no value/);
  assert.equal(deadLetters[2]!.reason, 'the Avro body cannot be decoded with writer schema id 7 into the audit event schema');
  assert.match(deadLetters[3]!.reason, /event_time is outside the storable time range/);
  assert.match(deadLetters[4]!.reason, /CANNOT_PARSE_TEXT/);
  for (const d of deadLetters) assert.doesNotMatch(d.reason, /ann@example\.com|12000/, 'no payload values in reasons');
});

test('with requireTokenized, a record without the tokenizer\'s header is dead-lettered NOT_TOKENIZED before it is decoded; tokenized ones are written', async () => {
  const w = writer();
  const handle = createHotstoreHandler({ codec, writer: w, requireTokenized: true });
  const tokenized = { ...record(Buffer.from('0')), headers: { 'auditline-tokenized': Buffer.from('v1') } };
  const plain = record(Buffer.from('1'));
  const { deadLetters } = await handle([tokenized, plain], { signal: new AbortController().signal });
  assert.deepEqual(deadLetters.map((d) => [d.record.offset, d.code]), [[plain.offset, 'NOT_TOKENIZED']]);
  assert.match(deadLetters[0]!.reason, /no auditline-tokenized header/);
  assert.deepEqual(w.written.flat().map((r) => r.eventId), [events[0]!.event_id]);
});

test('a retriable failure (registry or ClickHouse down) fails the whole batch so that it is retried and not committed', async () => {
  const handle = createHotstoreHandler({ codec, writer: writer() });
  await assert.rejects(handle([record(Buffer.from('0')), record(Buffer.from('registry-down'))], { signal: new AbortController().signal }), (e) => (e as AuditlineError).code === 'REGISTRY_UNAVAILABLE');
  const down = createHotstoreHandler({
    codec,
    writer: { write: async () => Promise.reject(new AuditlineError('CLICKHOUSE_UNAVAILABLE', 'ECONNREFUSED', { retriable: true })) },
  });
  await assert.rejects(down([record(Buffer.from('0'))], { signal: new AbortController().signal }), (e) => (e as AuditlineError).code === 'CLICKHOUSE_UNAVAILABLE');
});

test('decode failure reasons are templates: library text that could quote payload bytes is never copied', () => {
  const reason = decodeFailureReason(new AuditlineError('DECODE_FAILED', 'invalid value "ann@example.com"', { details: { schemaId: 3 } }));
  assert.equal(reason, 'the Avro body cannot be decoded with writer schema id 3 into the audit event schema');
  assert.match(decodeFailureReason(new AuditlineError('SCHEMA_NOT_FOUND', 'schema id 9 is not registered')), /not registered/);
});

test('ClickHouse failures: data errors are rejected rows, everything else (outage, missing table or column) is retriable', () => {
  const ch = (code: string, type: string, message = 'x') => new ClickHouseError({ message, code, type });
  assert.deepEqual(classifyClickHouseError(ch('25', 'CANNOT_PARSE_ESCAPE_SEQUENCE')), { retriable: false, type: 'CANNOT_PARSE_ESCAPE_SEQUENCE', code: '25', summary: 'ClickHouse error CANNOT_PARSE_ESCAPE_SEQUENCE (code 25)' });
  assert.equal(classifyClickHouseError(ch('41', 'CANNOT_PARSE_DATETIME')).retriable, false);
  assert.equal(classifyClickHouseError(ch('60', 'UNKNOWN_TABLE')).retriable, true);
  assert.equal(classifyClickHouseError(ch('252', 'TOO_MANY_PARTS')).retriable, true);
  assert.equal(classifyClickHouseError(ch('241', 'MEMORY_LIMIT_EXCEEDED')).retriable, true);
  assert.equal(classifyClickHouseError(ch('117', 'INCORRECT_DATA', 'Unknown field found while parsing JSONEachRow format: new_col')).retriable, true, 'schema drift waits');
  assert.equal(classifyClickHouseError(ch('117', 'INCORRECT_DATA', 'Cannot parse JSON object here')).retriable, false);
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' });
  assert.deepEqual(classifyClickHouseError(refused), { retriable: true, type: 'ECONNREFUSED', code: '', summary: 'connect ECONNREFUSED 127.0.0.1:8123' });
  assert.equal(classifyClickHouseError(new Error('Timeout error.')).retriable, true, 'a timeout without a code is still an outage');
});

test('a RangeError or TypeError raised while writing the rows is a programming or data error, not a connection failure: not retried', () => {
  let invalidTime: unknown;
  try {
    new Date(9e15).toISOString();
  } catch (err) {
    invalidTime = err;
  }
  assert.ok(invalidTime instanceof RangeError);
  assert.deepEqual(classifyClickHouseError(invalidTime), { retriable: false, type: 'RangeError', code: '', summary: 'RangeError: Invalid time value' });
  let bigint: unknown;
  try {
    JSON.stringify({ n: 1n });
  } catch (err) {
    bigint = err;
  }
  assert.ok(bigint instanceof TypeError);
  assert.equal(classifyClickHouseError(bigint).retriable, false);
  assert.equal(classifyClickHouseError(bigint).type, 'TypeError');
});
