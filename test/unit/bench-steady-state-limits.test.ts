import { test } from 'node:test';
import assert from 'node:assert/strict';
import { steadyState } from '../../bench/stats.js';

test('steadyState fails at its deadline when the work stalls, instead of waiting forever', async () => {
  const began = performance.now();
  await assert.rejects(steadyState(async () => 3, 10, undefined, 200), /3 of 10 items finished within 200 ms/);
  assert.ok(performance.now() - began < 2_000);
});

test('steadyState names a consumer that never joined when its deadline passes', async () => {
  await assert.rejects(steadyState(async () => 0, 10, () => false, 100), /never joined/);
});

test('steadyState refuses a window without items or time (the work finished between two polls) rather than a NaN rate', async () => {
  // Without `joined` the window opens at the first poll that sees progress; here that poll already sees everything.
  await assert.rejects(steadyState(async () => 10, 10), /no measurable window/);
  // With `joined` still false when everything is done, there is no window at all.
  await assert.rejects(steadyState(async () => 10, 10, () => false), /before the window opened/);
});
