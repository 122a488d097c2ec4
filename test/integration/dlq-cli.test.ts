import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { DLQ_HEADERS, DlqPublisher, REDRIVE_HEADERS, type DeadLetter, type SourceRecord } from '../../core/service/index.js';
import { clickhouse, createTokenizerDatabase, createTokenizerTopics, dropTokenizerTopics, kafka, readTopic, runCli, type ReadRecord, type TokenizerNames } from '../helpers/tokenizer-stack.js';
import { uniqueName } from '../helpers/names.js';

// The S3 SDK warns on Node 20 about releases after January 2027 (docs/compatibility.md).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// `auditline dlq` on the real broker: dead letters of two services (published by the services' own DlqPublisher),
// listed without payload, redriven once per service, never twice.

const client = clickhouse();
let database: string;
let names: TokenizerNames;
let env: Record<string, string>;

const PII = 'alice.redrive@example.com';

function source(topic: string, partition: number, offset: number, key: string, value: string, headers: Record<string, string> = {}): SourceRecord {
  return { topic, partition, offset: String(offset), key: Buffer.from(key), value: Buffer.from(value), headers, timestamp: String(Date.now()) };
}

async function endOffsets(topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
  } finally {
    await admin.disconnect();
  }
}

before(async () => {
  database = await createTokenizerDatabase(client);
  names = await createTokenizerTopics('dlq-cli', 2, { subjects: false });
  // The services' input topics as deployed: a redrive sends a dead letter only to an input of its service.
  env = { AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_TOKENIZER_TOPIC: names.raw, AUDITLINE_HOTSTORE_TOPIC: names.events, AUDITLINE_ARCHIVER_TOPIC: names.events };
  const tokenizer = new DlqPublisher(kafka, { topic: names.dlq, service: 'tokenizer' });
  const hotstore = new DlqPublisher(kafka, { topic: names.dlq, service: 'hotstore' });
  const raw = (offset: number, key: string) => source(names.raw, 1, offset, key, `{"input":{"email":"${PII}"},"n":${offset}}`, { 'auditline-pii-mode': 'raw', 'trace-id': `t-${offset}` });
  const letters: [DlqPublisher, DeadLetter][] = [
    [tokenizer, { record: raw(10, 'exec-a'), code: 'TOKENIZE_FAILED', reason: 'event e-10 cannot be written after tokenization (KAFKA_UNAVAILABLE)' }],
    [hotstore, { record: source(names.events, 0, 5, 'exec-b', 'tokenized-5', { 'auditline-tokenized': '1' }), code: 'ROW_REJECTED', reason: `event e-5: event_time is outside the storable time range` }],
    [tokenizer, { record: raw(11, 'exec-c'), code: 'SCHEMA_NOT_FOUND', reason: 'the writer schema id 999 in the record header is not registered in the schema registry' }],
    // At least once: the same source record dead-lettered a second time (a crash before the commit).
    [tokenizer, { record: raw(10, 'exec-a'), code: 'TOKENIZE_FAILED', reason: 'event e-10 cannot be written after tokenization (KAFKA_UNAVAILABLE)' }],
    [hotstore, { record: source(names.events, 1, 6, 'exec-d', 'tokenized-6', { 'auditline-tokenized': '1' }), code: 'NOT_TOKENIZED', reason: 'record has no auditline-tokenized header' }],
  ];
  for (const [publisher, letter] of letters) await publisher.publish([letter]);
  await tokenizer.disconnect();
  await hotstore.disconnect();
});

after(async () => {
  await dropTokenizerTopics(names);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

interface Listed {
  dead_letters: { dlq: string; service: string; code: string; source: string; bytes: number }[];
  summary: { service: string; code: string; count: number }[];
  matched: number;
}

async function list(...args: string[]): Promise<Listed> {
  const r = await runCli(['dlq', 'list', '--topic', names.dlq, '--json', ...args], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as Listed;
}

test('dlq list filters by service, code and source topic, and prints no payload nor reason', { timeout: 120_000 }, async () => {
  const all = await list();
  assert.equal(all.matched, 5);
  assert.deepEqual(
    all.dead_letters.map((l) => [l.dlq, l.service, l.code, l.source]),
    [
      ['0:0', 'tokenizer', 'TOKENIZE_FAILED', `${names.raw}:1:10`],
      ['0:1', 'hotstore', 'ROW_REJECTED', `${names.events}:0:5`],
      ['0:2', 'tokenizer', 'SCHEMA_NOT_FOUND', `${names.raw}:1:11`],
      ['0:3', 'tokenizer', 'TOKENIZE_FAILED', `${names.raw}:1:10`],
      ['0:4', 'hotstore', 'NOT_TOKENIZED', `${names.events}:1:6`],
    ],
  );
  assert.deepEqual(all.summary[0], { service: 'tokenizer', code: 'TOKENIZE_FAILED', count: 2 });
  assert.deepEqual((await list('--service', 'hotstore')).dead_letters.map((l) => l.dlq), ['0:1', '0:4']);
  assert.deepEqual((await list('--code', 'TOKENIZE_FAILED')).dead_letters.map((l) => l.dlq), ['0:0', '0:3']);
  assert.deepEqual((await list('--source-topic', names.raw, '--service', 'tokenizer', '--code', 'SCHEMA_NOT_FOUND')).dead_letters.map((l) => l.dlq), ['0:2']);
  assert.equal((await list('--since', '2000-01-01T00:00:00Z')).matched, 5);
  assert.equal((await list('--limit', '2')).dead_letters.length, 2);

  const table = await runCli(['dlq', 'list', '--topic', names.dlq], env);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /tokenizer\s+TOKENIZE_FAILED\s+2/);
  for (const text of [table.stdout, table.stderr, JSON.stringify(all)]) {
    assert.ok(!text.includes(PII) && !text.includes('alice'), 'no payload on the terminal');
    assert.ok(!text.includes('storable time range') && !text.includes('cannot be written'), 'no reason text in the list');
  }

  const shown = await runCli(['dlq', 'show', '0:0', '--topic', names.dlq], env);
  assert.equal(shown.code, 0, shown.stderr);
  assert.match(shown.stdout, /code\s+TOKENIZE_FAILED/);
  assert.match(shown.stdout, /header trace-id\s+t-10/);
  assert.match(shown.stdout, /value\s+\d+ bytes, sha256 [0-9a-f]{64}, not the Confluent wire format \(not shown/);
  assert.ok(!shown.stdout.includes('alice'), 'show prints no value');
  assert.equal((await runCli(['dlq', 'show', '0:99', '--topic', names.dlq], env)).code, 4, 'no dead letter there');
});

test('dlq redrive sends one service\'s dead letters to their source topic once: dry run and second run send nothing', { timeout: 120_000 }, async () => {
  const rawBefore = await endOffsets(names.raw);
  const eventsBefore = await endOffsets(names.events);

  const dry = await runCli(['dlq', 'redrive', '--topic', names.dlq, '--service', 'tokenizer', '--dry-run'], env);
  assert.equal(dry.code, 0, dry.stderr);
  assert.match(dry.stderr, /dry run: 2 dead letter\(s\) would be sent; 1 skipped \(1 same source record\)/);
  assert.equal(await endOffsets(names.raw), rawBefore, 'a dry run sends nothing');

  const refused = await runCli(['dlq', 'redrive', '--topic', names.dlq, '--service', 'tokenizer'], env);
  assert.equal(refused.code, 2, 'a redrive needs --reason (and --as without a principals file)');

  const first = await runCli(['dlq', 'redrive', '--topic', names.dlq, '--service', 'tokenizer', '--as', 'ops-olga', '--reason', 'INC-2041 tokenizer fixed', '--json'], env);
  assert.equal(first.code, 0, first.stderr);
  const result = JSON.parse(first.stdout) as { redrive_id: string; sent: { dlq: string }[]; skipped: { dlq: string; cause: string }[] };
  assert.deepEqual(result.sent.map((l) => l.dlq), ['0:0', '0:2']);
  assert.deepEqual(result.skipped.map((s) => [s.dlq, s.cause]), [['0:3', 'same source record']]);
  assert.ok(!first.stdout.includes('alice') && !first.stderr.includes('alice'));

  const redriven = await readTopic(names.raw, 2, { settleMs: 1_000 });
  assert.equal(redriven.length, 2, 'exactly the two tokenizer source records');
  const byKey = new Map(redriven.map((r) => [r.key, r]));
  assert.deepEqual([...byKey.keys()].sort(), ['exec-a', 'exec-c']);
  assert.equal(byKey.get('exec-a')!.value.toString(), `{"input":{"email":"${PII}"},"n":10}`, 'value byte for byte');
  assert.equal(byKey.get('exec-c')!.value.toString(), `{"input":{"email":"${PII}"},"n":11}`);
  for (const r of redriven) {
    assert.equal(r.headers['trace-id'], r.key === 'exec-a' ? 't-10' : 't-11', 'original headers kept');
    assert.equal(r.headers['auditline-pii-mode'], 'raw');
    assert.equal(r.headers[REDRIVE_HEADERS.id], result.redrive_id);
    assert.equal(r.headers[REDRIVE_HEADERS.of], `${names.dlq}:${r.key === 'exec-a' ? '0:0' : '0:2'}`);
    for (const h of Object.values(DLQ_HEADERS)) assert.equal(r.headers[h], undefined, `no ${h} on the redriven record`);
  }
  assert.equal(await endOffsets(names.events), eventsBefore, 'the hot store\'s dead letters stay where they are');
  // The two records and the marker of the transaction that committed them.
  const rawAfter = await endOffsets(names.raw);
  assert.equal(rawAfter, rawBefore + 3);

  const recorded = await (
    await client.query({ query: `SELECT state, principal, identified_by, dlq_offset, source_offset FROM ${database}.dlq_redrives ORDER BY dlq_offset, state`, format: 'JSONEachRow' })
  ).json<{ state: string; principal: string; identified_by: string; dlq_offset: string; source_offset: string }>();
  assert.deepEqual(
    recorded.map((r) => [r.state, r.principal, r.identified_by, String(r.dlq_offset), r.source_offset]),
    [
      ['sending', 'ops-olga', 'claimed', '0', '10'],
      ['sent', 'ops-olga', 'claimed', '0', '10'],
      ['sending', 'ops-olga', 'claimed', '2', '11'],
      ['sent', 'ops-olga', 'claimed', '2', '11'],
    ],
  );

  const second = await runCli(['dlq', 'redrive', '--topic', names.dlq, '--service', 'tokenizer', '--as', 'ops-olga', '--reason', 'INC-2041 tokenizer fixed'], env);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /nothing sent; 3 skipped \(2 already redriven, 1 same source record\)/);
  assert.equal(await endOffsets(names.raw), rawAfter, 'a second redrive sends nothing');

  const none = await runCli(['dlq', 'redrive', '--topic', names.dlq, '--service', 'archiver', '--dry-run'], env);
  assert.equal(none.code, 4, 'no dead letter of that service');

  const ranged = await runCli(['dlq', 'redrive', '--topic', names.dlq, '--service', 'hotstore', '--from', '0:4', '--to', '0:4', '--dry-run', '--json'], env);
  assert.equal(ranged.code, 0, ranged.stderr);
  assert.deepEqual((JSON.parse(ranged.stdout) as { would_send: { dlq: string }[] }).would_send.map((l) => l.dlq), ['0:4']);
  assert.equal(await endOffsets(names.events), eventsBefore);
});

test('an open transaction on the DLQ topic is reported, not passed off as the end: list warns, show says held back, and both read the rest once it ends', { timeout: 120_000 }, async () => {
  // The tokenizer writes its dead letters inside its transactions: while one is open, a read_committed reader stops
  // at it (the last stable offset), and dead letters committed after it are not readable yet.
  const topic = `${names.dlq}-txn`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] });
  const publisher = new DlqPublisher(kafka, { topic, service: 'hotstore' });
  const letter = (offset: number): DeadLetter => ({ record: source(names.events, 0, offset, `exec-${offset}`, `tokenized-${offset}`), code: 'ROW_REJECTED', reason: 'event_time is outside the storable time range' });
  const producer = kafka.producer({ transactionalId: `${topic}-tx`, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 90_000 });
  try {
    await publisher.publish([letter(1)]); // 0:0
    await producer.connect();
    const transaction = await producer.transaction();
    await transaction.send({ topic, messages: publisher.messages([letter(2)]).map((m) => ({ ...m, partition: 0 })) }); // 0:1, open
    await publisher.publish([letter(3)]); // 0:2, committed behind the open transaction
    const listed = await runCli(['dlq', 'list', '--topic', topic, '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const held = JSON.parse(listed.stdout) as Listed & { incomplete: { partition: number; cause: string }[] };
    assert.deepEqual(held.dead_letters.map((l) => l.dlq), ['0:0']);
    assert.deepEqual(held.incomplete, [{ partition: 0, cause: 'held back by an open transaction' }]);
    assert.match(listed.stderr, /partition 0 of \S+ not read to its end: held back by an open transaction; run again/);

    const shown = await runCli(['dlq', 'show', '0:2', '--topic', topic], env);
    assert.equal(shown.code, 1, shown.stderr);
    assert.match(shown.stderr, /0:2 not read: held back by an open transaction; run again/);
    assert.doesNotMatch(shown.stderr, /never written/);

    await transaction.abort();
    const after = await runCli(['dlq', 'list', '--topic', topic, '--json'], env);
    assert.equal(after.code, 0, after.stderr);
    const ended = JSON.parse(after.stdout) as Listed & { incomplete: unknown[] };
    assert.deepEqual(ended.dead_letters.map((l) => l.dlq), ['0:0', '0:2'], 'the aborted dead letter is not one');
    assert.deepEqual(ended.incomplete, []);
    assert.equal((await runCli(['dlq', 'show', '0:2', '--topic', topic], env)).code, 0);
    const aborted = await runCli(['dlq', 'show', '0:1', '--topic', topic], env);
    assert.equal(aborted.code, 4, aborted.stderr);
  } finally {
    await producer.disconnect().catch(() => undefined);
    await publisher.disconnect();
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
});

/** Every committed record of `topic` (read_committed), once nothing more arrived for `quietMs`. */
async function readAll(topic: string, quietMs = 3_000): Promise<ReadRecord[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('it-dlq-reader'), maxWaitTimeInMs: 100 });
  const got: ReadRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      let timer = setTimeout(resolve, quietMs * 3);
      void consumer
        .run({
          eachMessage: async ({ message }) => {
            got.push({ partition: 0, offset: message.offset, key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0), headers: {} });
            clearTimeout(timer);
            timer = setTimeout(resolve, quietMs);
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

test('two redrives of the same selection started together send each dead letter at most once; what neither sent is in doubt', { timeout: 180_000 }, async () => {
  const race = await createTokenizerTopics('dlq-race', 1, { subjects: false });
  try {
    const raceEnv = { ...env, AUDITLINE_TOKENIZER_TOPIC: race.raw };
    const publisher = new DlqPublisher(kafka, { topic: race.dlq, service: 'tokenizer' });
    const count = 80;
    // 20 kB each: several runs of 512 KiB per redrive, so the two overlap while sending.
    await publisher.publish(Array.from({ length: count }, (_, i): DeadLetter => ({ record: source(race.raw, 0, i, `exec-${i}`, `${'x'.repeat(20_000)}${i}`), code: 'TOKENIZE_FAILED', reason: 'race' })));
    await publisher.disconnect();
    const args = ['dlq', 'redrive', '--topic', race.dlq, '--service', 'tokenizer', '--as', 'ops-olga', '--reason', 'INC-7 race of two redrives', '--json'];
    const runs = await Promise.all([runCli(args, raceEnv), runCli(args, raceEnv)]);
    assert.ok(runs.some((r) => r.code === 0), runs.map((r) => r.stderr).join('\n'));
    for (const r of runs) assert.ok(r.code === 0 || /PRODUCER_FENCED: .*another redrive/.test(r.stderr), r.stderr);

    const redriven = (await readAll(race.raw)).map((r) => r.key);
    assert.equal(new Set(redriven).size, redriven.length, `no dead letter sent twice: ${redriven.length} records, ${new Set(redriven).size} keys`);
    const rows = await (
      await client.query({ query: `SELECT dlq_offset, max(state = 'sent') AS sent FROM ${database}.dlq_redrives WHERE dlq_topic = {t:String} GROUP BY dlq_offset`, query_params: { t: race.dlq }, format: 'JSONEachRow' })
    ).json<{ dlq_offset: string; sent: number }>();
    const inDoubt = rows.filter((r) => Number(r.sent) === 0).length;
    assert.equal(rows.length, count, 'every dead letter recorded');
    assert.equal(redriven.length + inDoubt, count, `sent (${redriven.length}) and in doubt (${inDoubt}) make up every dead letter`);

    const third = await runCli(args, raceEnv);
    assert.equal(third.code, 0, third.stderr);
    assert.match(third.stderr, /nothing sent/);
  } finally {
    await dropTokenizerTopics(race);
  }
});

test('a DLQ topic created again: its new dead letters at offsets redriven before are sent, not skipped as already redriven', { timeout: 120_000 }, async () => {
  const topics = await createTokenizerTopics('dlq-again', 1, { subjects: false });
  const againEnv = { ...env, AUDITLINE_TOKENIZER_TOPIC: topics.raw };
  const args = ['dlq', 'redrive', '--topic', topics.dlq, '--service', 'tokenizer', '--as', 'ops-olga', '--reason', 'INC-9 DLQ created again', '--json'];
  const publish = async (value: string) => {
    const publisher = new DlqPublisher(kafka, { topic: topics.dlq, service: 'tokenizer' });
    await publisher.publish([{ record: source(topics.raw, 0, value.length, `exec-${value}`, value), code: 'TOKENIZE_FAILED', reason: 'again' }]);
    await publisher.disconnect();
  };
  const admin = kafka.admin();
  await admin.connect();
  try {
    await publish('first');
    const first = await runCli(args, againEnv);
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual((JSON.parse(first.stdout) as { sent: { dlq: string }[] }).sent.map((l) => l.dlq), ['0:0']);

    await admin.deleteTopics({ topics: [topics.dlq] });
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.createTopics({ waitForLeaders: true, topics: [{ topic: topics.dlq, numPartitions: 1, replicationFactor: 1 }] });
        if ((await admin.listTopics()).includes(topics.dlq)) break;
      } catch (err) {
        if (attempt > 40) throw err;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    await publish('second one');
    const second = await runCli(args, againEnv);
    assert.equal(second.code, 0, second.stderr);
    const result = JSON.parse(second.stdout) as { sent: { dlq: string }[]; skipped: { cause: string }[] };
    assert.deepEqual(result.sent.map((l) => l.dlq), ['0:0'], 'the new dead letter at offset 0 is another one');
    assert.deepEqual(result.skipped, []);
    const third = await runCli(args, againEnv);
    assert.match(third.stderr, /nothing sent; 1 skipped \(1 already redriven\)/, 'and it, once sent, is not sent again');
  } finally {
    await admin.disconnect();
    await dropTokenizerTopics(topics);
  }
});
