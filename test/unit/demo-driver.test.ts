import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { parseSeed, randomSeed, SEED_MAX } from '../../cli/commands/demo.js';
import { UsageError } from '../../cli/exit.js';
import { AuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { seededRandom } from '../../demo/workflows.js';
import { runDemo } from '../../demo/driver.js';
import type { AuditProducer } from '../../producers/index.js';

test('executions the client could not record are counted with the reason that stopped them, never hidden', async () => {
  // A client whose every call fails, as with Kafka and the spool both unavailable.
  const failing = {
    startExecution: async () => {
      throw new AuditlineError('KAFKA_UNAVAILABLE', 'brokers 127.0.0.1:1 unreachable', { retriable: true });
    },
  } as unknown as AuditProducer;
  const summary = await runDemo(failing, { executions: 4, rate: 1_000, concurrency: 2, seed: 1 });
  assert.equal(summary.errors, 4);
  assert.deepEqual(summary.outcomes, []);
  assert.deepEqual(summary.errorMessages, [{ message: 'KAFKA_UNAVAILABLE: brokers 127.0.0.1:1 unreachable', count: 4 }]);
});

test('demo --seed: 0 to 2^32 - 1, the seeds the generator tells apart; help names no random number as the default', () => {
  assert.equal(SEED_MAX, 4_294_967_295);
  assert.equal(parseSeed('0'), 0);
  assert.equal(parseSeed(String(SEED_MAX)), SEED_MAX);
  for (const bad of [String(SEED_MAX + 1), '-1', '1.5', 'x']) assert.throws(() => parseSeed(bad), (e) => e instanceof UsageError && /^--seed .*: expected an integer 0-4294967295$/.test(e.message), bad);
  // mulberry32 reads its seed as an unsigned 32-bit integer: the largest seed is a story of its own, one more would be seed 0 again.
  const first = (seed: number) => Array.from({ length: 4 }, seededRandom(seed));
  assert.notDeepEqual(first(SEED_MAX), first(0));
  assert.notDeepEqual(first(2 ** 31), first(2 ** 31 - 1));
  assert.deepEqual(first(SEED_MAX + 1), first(0));
  for (let i = 0; i < 100; i++) {
    const seed = randomSeed();
    assert.ok(Number.isInteger(seed) && seed >= 0 && seed <= SEED_MAX, String(seed));
  }
  // Help showed another random number as --seed's default on each run.
  const help = () => spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'demo', '--help'], { encoding: 'utf8' });
  const [a, b] = [help(), help()];
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.match(a.stdout, /--seed <n> +seed of the branches taken, 0-4294967295 \(same seed, same\s+story; default: random, printed at start\)/);
});
