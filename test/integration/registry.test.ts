import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { loadEndpoints } from '../../core/endpoints.js';
import { isAuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { RegistryClient } from '../../schemas/registry.js';
import { uniqueName } from '../helpers/names.js';

const registry = new RegistryClient(loadEndpoints().registry);

const v1 = { type: 'record', name: 'Order', namespace: 'it.registry', fields: [{ name: 'id', type: 'string' }] };
const v2Compatible = { ...v1, fields: [...v1.fields, { name: 'note', type: ['null', 'string'], default: null }] };
const v2Incompatible = { ...v1, fields: [...v1.fields, { name: 'amount', type: 'long' }] };

test('register a schema, read it back by id and by subject, with BACKWARD compatibility set', async () => {
  const subject = `${uniqueName('it-reg')}-value`;
  const id = await registry.register(subject, v1);
  assert.ok(id > 0);
  assert.deepEqual(JSON.parse(await registry.schemaText(id)), v1);
  assert.deepEqual(await registry.versions(subject), [1]);
  assert.equal(await registry.getCompatibility(subject), 'BACKWARD');
  assert.equal(await registry.register(subject, v1), id, 'registering the same schema again is idempotent');
  assert.deepEqual(await registry.versions(subject), [1]);
});

test('instances registering the same schema on a new subject at once all get its id (Apicurio refuses the second of two concurrent first compatibility PUTs with 409 "rule already exists")', async () => {
  // Five rounds of eight clients, each on a fresh subject: the race is a matter of timing.
  for (let round = 0; round < 5; round++) {
    const subject = `${uniqueName('it-reg-race')}-value`;
    const clients = Array.from({ length: 8 }, () => new RegistryClient(loadEndpoints().registry));
    const outcomes = await Promise.allSettled(clients.map((c) => c.register(subject, v1)));
    const failed = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    assert.deepEqual(failed.map((o) => String(o.reason)), [], `round ${round}: every instance registered`);
    const ids = new Set(outcomes.map((o) => (o as PromiseFulfilledResult<number>).value));
    assert.equal(ids.size, 1, 'one id for all');
    assert.equal(await registry.getCompatibility(subject), 'BACKWARD');
    await registry.deleteSubject(subject);
  }
});

test('the registry rejects an incompatible change and accepts a compatible one', async () => {
  const subject = `${uniqueName('it-reg')}-value`;
  await registry.register(subject, v1);
  await assert.rejects(registry.register(subject, v2Incompatible), (e) => {
    assert.ok(isAuditlineError(e, 'SCHEMA_INCOMPATIBLE'), String(e));
    assert.match(e.message, new RegExp(`incompatible`, 'i'));
    assert.ok(e.message.includes(subject));
    return true;
  });
  assert.deepEqual(await registry.versions(subject), [1], 'the rejected schema was not stored');
  const id2 = await registry.register(subject, v2Compatible);
  assert.deepEqual(await registry.versions(subject), [1, 2]);
  assert.deepEqual(JSON.parse(await registry.schemaText(id2)), v2Compatible);
});

test('invalid schema fixtures are refused before they reach a subject', async () => {
  const dir = assetPath('test', 'fixtures', 'avsc', 'invalid');
  for (const file of readdirSync(dir)) {
    const subject = `${uniqueName('it-bad')}-value`;
    await assert.rejects(registry.register(subject, readFileSync(`${dir}/${file}`, 'utf8')), (e) => isAuditlineError(e, 'SCHEMA_INVALID') && e.message.includes(subject), file);
    assert.deepEqual(await registry.versions(subject), [], `${file} registered nothing`);
  }
});

test('the registry itself refuses a schema that is not Avro (server-side check)', async () => {
  const subject = `${uniqueName('it-raw')}-value`;
  const res = await fetch(`${loadEndpoints().registry.url}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
    body: JSON.stringify({ schema: '{"type":"record","name":"A","fields":[{"name":"a","type":"strin"}]}' }),
  });
  assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
});

test('an unknown schema id is SCHEMA_NOT_FOUND; an unreachable registry is retriable', async () => {
  await assert.rejects(registry.schemaText(987654321), (e) => isAuditlineError(e, 'SCHEMA_NOT_FOUND'));
  const down = new RegistryClient({ url: 'http://127.0.0.1:9/apis/ccompat/v7' });
  await assert.rejects(down.schemaText(1), (e) => isAuditlineError(e, 'REGISTRY_UNAVAILABLE') && e.retriable);
});
