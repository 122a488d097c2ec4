import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SerialByKey } from '../../core/service/index.js';

test('SerialByKey: tasks of one key run one after the other, also after one threw; other keys run side by side', async () => {
  const serial = new SerialByKey<number>();
  const log: string[] = [];
  const task = (name: string, ms: number, fail = false) => async () => {
    log.push(`${name}+`);
    await new Promise((r) => setTimeout(r, ms));
    log.push(`${name}-`);
    if (fail) throw new Error(name);
    return name;
  };
  const a1 = serial.run(1, task('a1', 30, true));
  const a2 = serial.run(1, task('a2', 1));
  const b1 = serial.run(2, task('b1', 1));
  await assert.rejects(a1, /a1/);
  assert.equal(await a2, 'a2');
  assert.equal(await b1, 'b1');
  assert.deepEqual(log, ['a1+', 'b1+', 'b1-', 'a1-', 'a2+', 'a2-']);
});
