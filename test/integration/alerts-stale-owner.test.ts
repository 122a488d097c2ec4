import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { createLogger } from '../../core/logger.js';
import type { SourceRecord } from '../../core/service/index.js';
import { parseRules, type Rule } from '../../consumers/alerts/index.js';
import { PiiDetector } from '../../consumers/alerts/pii.js';
import { RuleStage } from '../../consumers/alerts/rule-stage.js';
import { eventSignals } from '../../consumers/alerts/signals.js';
import { AlertStore } from '../../consumers/alerts/store.js';
import { execution, finished, started } from '../helpers/alerts-fixtures.js';
import { uniqueName } from '../helpers/names.js';
import { clickhouse, createTokenizerDatabase } from '../helpers/tokenizer-stack.js';

// Two owners of one signals partition against the real alerts_state table: the one a rebalance (or an eviction
// after a pause) took it from still finishes writes it had begun, after the new owner loaded the partition.

const client = clickhouse();
let database: string;

before(async () => {
  database = await createTokenizerDatabase(client);
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const store = (group: string) => new AlertStore(client, database, { group, topic: 'signals' });

test('alerts state: writes a stale owner finishes after the new owner loaded the partition neither tie nor beat the new owner\'s', async () => {
  const group = uniqueName('stale-store');
  const a = store(group);
  const b = store(group);
  const loadedA = await a.loadState(0);
  let cpA = { ...loadedA.checkpoint, nextOffset: '1', version: loadedA.checkpoint.version + 1 };
  await a.saveState(0, [['kept', 'a1'], ['window', 'a1']], cpA);
  // The rebalance: b owns partition 0 now and loads it.
  const loadedB = await b.loadState(0);
  assert.equal(loadedB.checkpoint.nextOffset, '1');
  assert.deepEqual(loadedB.entries.sort(), [['kept', 'a1'], ['window', 'a1']]);
  // a does not know yet: it stores two more changes (a batch in flight, then a tick), as the rule stage numbers them.
  cpA = { ...cpA, nextOffset: '2', version: cpA.version + 1 };
  await a.saveState(0, [['window', 'a2']], cpA);
  cpA = { ...cpA, nextOffset: '3', version: cpA.version + 1 };
  await a.saveState(0, [['window', 'a3']], cpA);
  // b handles the records from 1 on, further than a got.
  const cpB = { ...loadedB.checkpoint, nextOffset: '5', version: loadedB.checkpoint.version + 1 };
  await b.saveState(0, [['window', 'b1']], cpB);
  const reloaded = await store(group).loadState(0);
  assert.equal(reloaded.checkpoint.nextOffset, '5', "the new owner's checkpoint (it read up to offset 5), not the stale owner's (3)");
  assert.deepEqual(reloaded.entries.sort(), [['kept', 'a1'], ['window', 'b1']], "the new owner's entry, not the stale owner's later writes to it");
});

const ABSENCE = 'rules:\n  - { name: open, kind: absence, severity: high, channels: [c], start: { event: ExecutionStarted }, end: { event: ExecutionFinished }, within: 1h }';

function ruleStage(rules: Rule[], alertStore: AlertStore): RuleStage {
  return new RuleStage({
    rules,
    store: alertStore,
    producer: { send: async () => [] },
    dlq: { publish: async () => undefined },
    outboxTopic: 'outbox',
    idleTtlMs: 24 * 3_600_000,
    logger: createLogger('stale-owner-it', 'silent'),
  });
}

test('rule stage: a stale owner finishing batches after the new owner loaded the partition does not take the partition\'s checkpoint from it', async () => {
  const group = uniqueName('stale-stage');
  const rules = parseRules(parse(ABSENCE), 'test');
  const now = Date.now();
  const x = execution([(o) => started({}, o), (o) => finished('success', o)]);
  const y = execution([(o) => started({}, o)]);
  const z = execution([(o) => started({}, o)]);
  const signals = [x[0]!, x[1]!, y[0]!, z[0]!].map((e) => eventSignals(e, rules, new PiiDetector(), now));
  assert.ok(signals.every((s) => s.length === 1));
  const rec = (offset: number): SourceRecord => ({ topic: 'signals', partition: 0, offset: String(offset), key: null, value: Buffer.from(JSON.stringify(signals[offset]![0])), headers: {}, timestamp: '0' });
  const ctx = { signal: new AbortController().signal };
  const a = ruleStage(rules, store(group));
  a.assign([0]);
  await a.handler()([rec(0)], ctx);
  // The rebalance gives partition 0 to b; a is not told yet (evicted after a pause, or its assignment not handled yet).
  const b = ruleStage(rules, store(group));
  b.assign([0]);
  await b.handler()([rec(0)], ctx); // below b's loaded checkpoint: only waits for the load
  // a finishes what it had begun: a batch in flight and the next chunk of its fetch.
  await a.handler()([rec(1)], ctx);
  await a.handler()([rec(2)], ctx);
  // b handles the partition from its checkpoint on, further than a got.
  await b.handler()([rec(1), rec(2), rec(3)], ctx);
  const reloaded = await store(group).loadState(0);
  assert.equal(reloaded.checkpoint.nextOffset, '4', "the owner's checkpoint: a restart resumes at offset 4, not at the stale owner's 3");
  const open = (id: string) => reloaded.entries.some(([k]) => k.includes(id));
  assert.deepEqual([open(x[0]!.execution_id), open(y[0]!.execution_id), open(z[0]!.execution_id)], [false, true, true], 'x finished, y and z open (as the owner left them)');
});
