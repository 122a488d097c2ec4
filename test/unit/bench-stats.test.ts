import { test } from 'node:test';
import assert from 'node:assert/strict';
import { machineCpu, steadyState } from '../../bench/stats.js';

const burn = (ms: number) => {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x += Math.sqrt(x + 1);
  return x;
};

test('machineCpu reads the busy time of the whole machine: a 400 ms busy loop shows in it, and busy never exceeds all time', { skip: process.platform !== 'linux' }, () => {
  const before = machineCpu();
  assert.ok(before, '/proc/stat is readable on Linux');
  assert.ok(before.busyUs > 0 && before.busyUs <= before.totalUs);
  burn(400);
  const after = machineCpu()!;
  const busy = after.busyUs - before.busyUs;
  const total = after.totalUs - before.totalUs;
  // One core was busy the whole time (the counters tick every 10 ms); other processes can only add to it.
  assert.ok(busy >= 300_000, `busy ${busy} µs over a 400 ms loop`);
  assert.ok(busy <= total, `busy ${busy} µs, all cores ${total} µs`);
  // All time of all cores is the wall time times the number of cores the kernel counts.
  assert.ok(total >= 350_000, `all cores ${total} µs over 400 ms of wall time`);
});

test('steadyState starts its window at the join and counts every item after it, with this process CPU and the machine CPU of the window', async () => {
  let done = 0;
  let joined = false;
  const timer = setInterval(() => {
    if (!joined) {
      joined = true;
      return;
    }
    burn(20);
    done = Math.min(done + 10, 50);
  }, 15);
  try {
    const run = await steadyState(async () => done, 50, () => joined);
    assert.equal(run.items, 50, 'nothing was finished at the join, so every item is in the window');
    assert.ok(run.seconds >= 0.08, `window ${run.seconds} s for five 20-ms steps`);
    assert.ok(run.cpuUs >= 60_000, `process CPU ${run.cpuUs} µs for 100 ms of busy loops`);
    if (process.platform === 'linux') assert.ok(run.machine && run.machine.busyUs >= 50_000 && run.machine.busyUs <= run.machine.totalUs);
  } finally {
    clearInterval(timer);
  }
});
