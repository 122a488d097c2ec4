import { test } from 'node:test';
import assert from 'node:assert/strict';
import { machineCpu, steadyState } from '../../bench/stats.js';

/**
 * Busy-loops until this process has used `ms` of CPU (user + system), however
 * long that takes on a loaded machine: a loop bounded by wall time uses less
 * CPU whenever the process is descheduled.
 */
const burnCpu = (ms: number) => {
  const start = process.cpuUsage();
  let x = 0;
  for (let used = 0; used < ms * 1000; ) {
    for (let i = 0; i < 10_000; i += 1) x += Math.sqrt(x + 1);
    const { user, system } = process.cpuUsage(start);
    used = user + system;
  }
  return x;
};

test('machineCpu reads the busy time of the whole machine: 400 ms of CPU burnt shows in it, and busy never exceeds all time', { skip: process.platform !== 'linux' }, () => {
  const before = machineCpu();
  assert.ok(before, '/proc/stat is readable on Linux');
  assert.ok(before.busyUs > 0 && before.busyUs <= before.totalUs);
  burnCpu(400);
  const after = machineCpu()!;
  const busy = after.busyUs - before.busyUs;
  const total = after.totalUs - before.totalUs;
  // This process kept a core busy for 400 ms (the counters tick every 10 ms); other processes can only add to it.
  assert.ok(busy >= 300_000, `busy ${busy} µs for 400 ms of CPU burnt`);
  assert.ok(busy <= total, `busy ${busy} µs, all cores ${total} µs`);
  // All time of all cores is the wall time (at least the 400 ms of CPU) times the number of cores the kernel counts.
  assert.ok(total >= 350_000, `all cores ${total} µs over at least 400 ms of wall time`);
});

test('steadyState starts its window at the join and counts every item after it, with this process CPU and the machine CPU of the window', async () => {
  let done = 0;
  let joined = false;
  const timer = setInterval(() => {
    if (!joined) {
      joined = true;
      return;
    }
    burnCpu(20);
    done = Math.min(done + 10, 50);
  }, 15);
  try {
    const run = await steadyState(async () => done, 50, () => joined);
    assert.equal(run.items, 50, 'nothing was finished at the join, so every item is in the window');
    assert.ok(run.seconds >= 0.08, `window ${run.seconds} s for five steps of 20 ms of CPU each`);
    // Each step burns 20 ms of CPU inside the window, however long the machine makes it take.
    assert.ok(run.cpuUs >= 100_000, `process CPU ${run.cpuUs} µs for five steps of 20 ms of CPU each`);
    if (process.platform === 'linux') assert.ok(run.machine && run.machine.busyUs >= 50_000 && run.machine.busyUs <= run.machine.totalUs);
  } finally {
    clearInterval(timer);
  }
});
