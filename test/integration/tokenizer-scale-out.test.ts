import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AuditEvent } from '../../schemas/index.js';
import { committedToEnd, waitFor } from '../helpers/hotstore-stack.js';
import { piiExecution, testKeys } from '../helpers/tokenizer-fixtures.js';
import {
  clickhouse,
  createTokenizerDatabase,
  createTokenizerTopics,
  decodeAll,
  dropTokenizerTopics,
  publish,
  readTopic,
  startTokenizerChild,
  tokenizerEnv,
  type TokenizerChild,
  type TokenizerNames,
} from '../helpers/tokenizer-stack.js';

const client = clickhouse();
let database: string;
let names: TokenizerNames;

before(async () => {
  database = await createTokenizerDatabase(client);
  names = await createTokenizerTopics('tk-scale');
});

after(async () => {
  await dropTokenizerTopics(names, [names.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child's `auditline_tokenizer_transactions_total` for one outcome, read from its /metrics. */
async function transactions(child: TokenizerChild, outcome: 'committed' | 'aborted' | 'fenced'): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${await child.port}/metrics`);
  const text = await res.text();
  const line = text.split('\n').find((l) => l.startsWith(`auditline_tokenizer_transactions_total{outcome="${outcome}"}`));
  assert.ok(line, `the child's /metrics has auditline_tokenizer_transactions_total{outcome="${outcome}"}`);
  return Number(line.split(' ').at(-1));
}

function executions(n: number, tag: string): AuditEvent[] {
  const events: AuditEvent[] = [];
  for (let i = 0; i < n; i++) events.push(...piiExecution({ status: i % 4 === 0 ? 'failed' : 'success', email: `${tag}-${i % 50}@example.com` }));
  return events;
}

test(
  'scale-out past a frozen instance: the newcomer takes its partitions and fences its open transaction, the woken zombie commits nothing, then both share the work; every input event exactly once',
  { timeout: 180_000 },
  async (t) => {
    const first = executions(1_500, 'wave1');
    await publish(names.raw, first);
    const env = tokenizerEnv(names, database, testKeys(), { AUDITLINE_TOKENIZER_BATCH_SIZE: '500' });
    // The test hook freezes A (SIGSTOP) before its second commit: that transaction's records and offsets are sent, not committed.
    const a = startTokenizerChild({ ...env, AUDITLINE_TOKENIZER_TEST_PAUSE_BEFORE_COMMIT: '2' });
    let b: TokenizerChild | undefined;
    const published: AuditEvent[] = [...first];
    try {
      await a.port;
      const paused = 'test hook: transaction sent, pausing before its commit';
      await waitFor('A froze with a transaction open', async () => a.logs().some((l) => l.msg === paused), 60_000);
      assert.equal(await committedToEnd(names.group, names.raw), false, 'A froze before the raw topic was committed');

      // B joins; A, frozen, misses its heartbeats and is evicted after the session timeout (6 s); B takes all
      // three partitions, fencing A's transactional ids, which aborts A's open transaction.
      b = startTokenizerChild(env);
      await waitFor('B committed the whole raw topic while A was frozen', () => committedToEnd(names.group, names.raw), 90_000);
      const bEarly = await transactions(b, 'committed');
      assert.ok(bEarly > 0, 'B committed transactions');

      // A wakes and goes on with its commit: the broker must refuse it (fenced), and A must not write the batch again.
      a.process.kill('SIGCONT');
      await waitFor('the woken A reports its commit fenced', async () => (await transactions(a, 'fenced')) >= 1, 30_000);
      const aBefore = await transactions(a, 'committed');
      t.diagnostic(`A committed ${aBefore} transaction(s) before it froze; B ${bEarly} while A was frozen`);

      // A rejoins the group and the partitions are shared: publish in waves until A commits again.
      let wave = 2;
      const deadline = Date.now() + 60_000;
      while ((await transactions(a, 'committed')) === aBefore) {
        assert.ok(Date.now() < deadline, 'the woken A took partitions again within 60 s and committed work');
        const more = executions(100, `wave${wave++}`);
        await publish(names.raw, more);
        published.push(...more);
        await sleep(1_000);
      }
      await waitFor('the group committed the whole raw topic', () => committedToEnd(names.group, names.raw), 60_000);
      t.diagnostic(`${wave - 2} more wave(s); A committed ${(await transactions(a, 'committed')) - aBefore} transaction(s) after waking, B ${(await transactions(b, 'committed')) - bEarly}`);

      for (const child of [a, b]) child.process.kill('SIGTERM');
      assert.deepEqual(await Promise.all([a.exited, b.exited]), [0, 0], 'both instances stop cleanly');
    } finally {
      for (const child of [a, b]) {
        if (!child || child.process.exitCode !== null || child.process.signalCode !== null) continue;
        child.process.kill('SIGCONT');
        child.process.kill('SIGKILL');
      }
    }

    const records = await readTopic(names.events, published.length, { timeoutMs: 30_000, settleMs: 1_500 });
    const ids = (await decodeAll(names.events, records)).map((e) => e.event_id).sort();
    assert.equal(ids.length, published.length, `every input event once in ${names.events}: ${ids.length} records for ${published.length} inputs`);
    assert.deepEqual(ids, published.map((e) => e.event_id).sort(), 'the output event ids are exactly the input event ids');
  },
);
