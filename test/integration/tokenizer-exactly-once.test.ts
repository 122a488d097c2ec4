import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Consumer } from 'kafkajs';
import type { AuditEvent } from '../../schemas/index.js';
import { committedToEnd, waitFor } from '../helpers/hotstore-stack.js';
import { uniqueName } from '../helpers/names.js';
import { piiExecution, testKeys } from '../helpers/tokenizer-fixtures.js';
import {
  clickhouse,
  createTokenizerDatabase,
  createTokenizerTopics,
  decodeAll,
  dropTokenizerTopics,
  kafka,
  publish,
  readTopic,
  startTokenizerChild,
  tokenizerEnv,
  type TokenizerNames,
} from '../helpers/tokenizer-stack.js';

const client = clickhouse();
let database: string;
let names: TokenizerNames;
const EXECUTIONS = 2_500;

before(async () => {
  database = await createTokenizerDatabase(client);
  names = await createTokenizerTopics('tk-eos');
});

after(async () => {
  await dropTokenizerTopics(names);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

/** Counts the records of a topic as a consumer with the given isolation level sees them, from the start, continuously. */
async function tail(topic: string, readUncommitted: boolean): Promise<{ consumer: Consumer; count: () => number }> {
  let n = 0;
  const consumer = kafka.consumer({ groupId: uniqueName('it-tk-tail'), readUncommitted, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({ eachBatch: async ({ batch }) => void (n += batch.messages.length) });
  return { consumer, count: () => n };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('SIGKILL in the middle of a transaction, then a restart: every input event exactly once for a read_committed consumer', { timeout: 90_000 }, async (t) => {
  const input: AuditEvent[] = [];
  for (let i = 0; i < EXECUTIONS; i++) input.push(...piiExecution({ status: i % 3 === 0 ? 'failed' : 'success' }));
  await publish(names.raw, input);
  const env = tokenizerEnv(names, database, testKeys(), { AUDITLINE_TOKENIZER_BATCH_SIZE: '1000' });
  const committed = await tail(names.events, false);
  const uncommitted = await tail(names.events, true);
  try {
    // The test hook stops the child before its third commit, with that transaction's records and offsets sent:
    // earlier batches are committed, this one is open. SIGKILL it there.
    const first = startTokenizerChild({ ...env, AUDITLINE_TOKENIZER_TEST_PAUSE_BEFORE_COMMIT: '3' });
    const paused = 'test hook: transaction sent, pausing before its commit';
    for (let i = 0; i < 1200 && !first.logs().some((l) => l.msg === paused); i++) await sleep(100);
    assert.ok(first.logs().some((l) => l.msg === paused), `the test hook paused the child before a commit; it logged: ${first.logs().slice(-20).map((l) => String(l.msg)).join(' | ')}`);
    // The open transaction's records are in the log: read_uncommitted readers see them, read_committed ones do not.
    for (let i = 0; i < 100 && uncommitted.count() <= committed.count(); i++) await sleep(100);
    assert.ok(uncommitted.count() > committed.count(), `the open transaction's records are visible uncommitted (${uncommitted.count()} against ${committed.count()} committed)`);
    first.process.kill('SIGKILL');
    await first.exited;
    assert.equal(first.process.signalCode, 'SIGKILL');
    t.diagnostic(`killed with ${committed.count()} of ${input.length} events committed and ${uncommitted.count() - committed.count()} written but uncommitted`);
    assert.ok(committed.count() < input.length);

    const second = startTokenizerChild(env);
    try {
      await waitFor('the restarted tokenizer committed the whole raw topic', () => committedToEnd(names.group, names.raw), 40_000);
    } finally {
      second.process.kill('SIGTERM');
      assert.equal(await second.exited, 0);
    }

    const records = await readTopic(names.events, input.length, { timeoutMs: 30_000, settleMs: 1_000 });
    const ids = (await decodeAll(names.events, records)).map((e) => e.event_id).sort();
    assert.equal(ids.length, input.length, 'no duplicates, nothing lost');
    assert.deepEqual(ids, input.map((e) => e.event_id).sort(), 'the output event ids are exactly the input event ids');
    for (let i = 0; i < 50 && uncommitted.count() <= input.length; i++) await sleep(100);
    assert.ok(uncommitted.count() > input.length, 'records of the killed transaction exist for read_uncommitted readers (aborted), proving the kill hit a transaction');
    t.diagnostic(`read_uncommitted saw ${uncommitted.count()} records, read_committed ${records.length}`);
  } finally {
    await committed.consumer.disconnect();
    await uncommitted.consumer.disconnect();
  }
});
