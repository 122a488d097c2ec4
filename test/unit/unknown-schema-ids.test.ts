import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAuditlineError } from '../../core/errors.js';
import { UnknownSchemaIds } from '../../schemas/index.js';

test('an unknown schema id is a retriable miss for the window from its first miss, then final; an id found again starts over; memory is bounded', () => {
  let now = 1_000;
  const ids = new UnknownSchemaIds(60_000, () => now, 3);
  const first = ids.miss(9, 'http://registry');
  assert.ok(isAuditlineError(first, 'SCHEMA_NOT_FOUND') && first.retriable, first.message);
  assert.match(first.message, /schema id 9 is not registered in http:\/\/registry \(yet\?\): retried for 60000 ms/);
  now += 59_999;
  assert.equal(ids.miss(9, 'r').retriable, true, 'still within the window');
  now += 1;
  const final = ids.miss(9, 'r');
  assert.ok(!final.retriable, 'the window is over: final');
  assert.deepEqual(final.details, { schemaId: 9, unknownForMs: 60_000 });
  assert.equal(ids.miss(9, 'r').retriable, false, 'and stays final');
  assert.equal(ids.miss(10, 'r').retriable, true, 'each id has its own window');
  ids.found(9);
  assert.equal(ids.miss(9, 'r').retriable, true, 'found, then missing again (a registry restarted): a new window');
  // Bounded (maxTracked 3): the oldest misses are forgotten first; 10's is, once three newer ones came.
  now += 100_000;
  assert.equal(ids.miss(10, 'r').retriable, false);
  for (const id of [13, 14, 15]) ids.miss(id, 'r');
  assert.equal(ids.miss(10, 'r').retriable, true, 'forgotten: a new window');

  const none = new UnknownSchemaIds(0, () => now);
  const atOnce = none.miss(9, 'r');
  assert.ok(isAuditlineError(atOnce, 'SCHEMA_NOT_FOUND') && !atOnce.retriable, 'window 0: final at once');
  assert.doesNotMatch(atOnce.message, /still unknown/);
});
