import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { auditEventSchema, dataClassIndex, frame, invalidPaths, sampleExecution, unframe, unwrapPayload, validateAvro, EVENT_KINDS } from '../../schemas/index.js';
import { isAuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';

/** avsc decodes records into class instances; compare their data. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

test('every field of the envelope carries a data class, with the expected tags', () => {
  const index = dataClassIndex(auditEventSchema().raw);
  assert.equal(index.get('execution_id'), 'sox');
  assert.equal(index.get('producer.host'), 'internal');
  assert.equal(index.get('payload.ExecutionStarted.input'), 'pii');
  assert.equal(index.get('payload.ExecutionStarted.triggered_by.id'), 'sox');
  assert.equal(index.get('payload.StepFinished.error.message'), 'pii');
  assert.equal(index.get('payload.ExecutionFinished.error.message'), 'pii');
  assert.equal(index.get('payload.DecisionRecorded.branch_reason'), 'pii');
  assert.equal(index.get('payload.DecisionRecorded.branch_taken'), 'sox');
  // Every JSON-bearing field may hold personal data and must be scanned.
  for (const path of ['payload.StepFinished.input_data', 'payload.StepFinished.output_data', 'payload.ExecutionFinished.output']) {
    assert.equal(index.get(path), 'pii', path);
  }
});

test('a field without a data class is refused, naming the field', () => {
  const schema = { type: 'record', name: 'X', fields: [{ name: 'ok', type: 'string', dataClass: 'sox' }, { name: 'untagged', type: 'string' }] };
  assert.throws(() => dataClassIndex(schema), /field untagged of record X has dataClass undefined/);
});

test('sample executions hold every event kind and are valid against the schema', () => {
  const { type } = auditEventSchema();
  for (const status of ['success', 'failed'] as const) {
    const events = sampleExecution({ status });
    assert.deepEqual(events.map((e) => unwrapPayload(e.payload).kind), [...EVENT_KINDS]);
    assert.deepEqual(events.map((e) => e.sequence), [1, 2, 3, 4]);
    for (const e of events) {
      assert.deepEqual(invalidPaths(type, e), []);
      assert.deepEqual(plain(type.fromBuffer(type.toBuffer(e))), e);
    }
  }
});

test('invalidPaths names the field that does not match, never its value', () => {
  const { type } = auditEventSchema();
  const [, step] = sampleExecution();
  const bad = structuredClone(step!) as unknown as { payload: Record<string, Record<string, unknown>> };
  bad.payload['io.auditline.events.StepFinished']!.attempt = 'secret-value@example.com';
  const paths = invalidPaths(type, bad);
  assert.equal(paths.length, 1);
  assert.match(paths[0]!, /^payload\.io\.auditline\.events\.StepFinished\.attempt \(expected int\)$/);
  assert.doesNotMatch(paths.join(), /secret-value/);
});

test('wire format: frame and unframe round trip, bad headers are refused', () => {
  const framed = frame(4242, Buffer.from([1, 2, 3]));
  assert.deepEqual([...framed.subarray(0, 5)], [0, 0, 0, 0x10, 0x92]);
  const { schemaId, body } = unframe(framed);
  assert.equal(schemaId, 4242);
  assert.deepEqual([...body], [1, 2, 3]);
  assert.throws(() => unframe(Buffer.from([0, 0, 1])), (e) => isAuditlineError(e, 'WIRE_FORMAT_INVALID') && /shorter than the 5-byte header/.test(e.message));
  assert.throws(() => unframe(Buffer.from([1, 0, 0, 0, 1, 9])), (e) => isAuditlineError(e, 'WIRE_FORMAT_INVALID') && /magic byte is 1/.test(e.message));
});

test('each invalid schema fixture is refused with SCHEMA_INVALID and the reason', () => {
  const dir = assetPath('test', 'fixtures', 'avsc', 'invalid');
  const files = readdirSync(dir);
  assert.ok(files.length >= 5);
  const reasons: Record<string, RegExp> = {
    'unknown-type.avsc': /undefined type name: strnig/,
    'missing-name.avsc': /missing name/,
    'bad-default.avsc': /invalid "int": "many"/,
    'duplicate-field.avsc': /duplicate field name/,
    'not-json.avsc': /not valid JSON/,
  };
  for (const file of files) {
    const text = readFileSync(`${dir}/${file}`, 'utf8');
    assert.throws(
      () => validateAvro(`fixture-${file}`, text),
      (e) => isAuditlineError(e, 'SCHEMA_INVALID') && e.message.includes(`fixture-${file}`) && (reasons[file] ?? /./).test(e.message),
      file,
    );
  }
});
