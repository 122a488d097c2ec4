import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, type KafkaMessage } from 'kafkajs';
import { UsageError } from '../../cli/exit.js';
import { listRow, parseDlqPosition, parseListOptions, parseRedriveOptions, parseSinceTime, showFields, summarize } from '../../cli/commands/dlq.js';
import { clusterFactory, matchesFilter, ReadProgress } from '../../cli/dlq/read.js';
import { planRedrive, serviceInputs, valueSha256, type RedriveHistory } from '../../cli/dlq/redrive.js';
import { deadLetterMessage, DLQ_HEADERS, readDeadLetter, REDRIVE_HEADERS, redriveMessage, type StoredDeadLetter } from '../../core/service/index.js';

const usage = (fn: () => unknown, message: RegExp) =>
  assert.throws(fn, (e) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.match(e.message, message);
    return true;
  });

test('positions are <partition>:<offset>', () => {
  assert.deepEqual(parseDlqPosition('0:1234', '--from'), { partition: 0, offset: 1234n });
  assert.deepEqual(parseDlqPosition(' 3:9223372036854775807 ', '--to'), { partition: 3, offset: 9223372036854775807n });
  for (const bad of ['', '0', ':1', '0:', '-1:2', '0:-2', 'a:b', '0:1:2', '0:9223372036854775808']) usage(() => parseDlqPosition(bad, '--from'), /--from/);
});

test('--since takes a duration or an ISO 8601 time', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  assert.equal(parseSinceTime('1h', now), now - 3_600_000);
  assert.equal(parseSinceTime('7d', now), now - 7 * 86_400_000);
  assert.equal(parseSinceTime('2026-02-28T08:00:00Z', now), Date.parse('2026-02-28T08:00:00Z'));
  assert.equal(parseSinceTime('2026-02-28', now), Date.parse('2026-02-28'));
  for (const bad of ['yesterday', '1w', '0h', '-1h', '2026-13-45', 'Feb 28 2026', '2026-02-30', '2026-02-28T24:00:00Z', '2026-02-28T08:00:00+25:00']) usage(() => parseSinceTime(bad, now), /--since/);
});

test('list options: filters, limit and topic are validated', () => {
  const now = Date.parse('2026-03-01T12:00:00Z');
  assert.deepEqual(parseListOptions({ topic: 'audit.dlq', limit: '1000' }, now), { topic: 'audit.dlq', filter: {}, limit: 1000, json: false });
  assert.deepEqual(parseListOptions({ topic: 'audit.dlq', service: 'tokenizer', code: 'TOKENIZE_FAILED', sourceTopic: 'audit.raw', since: '1h', limit: '5', json: true }, now), {
    topic: 'audit.dlq',
    filter: { service: 'tokenizer', code: 'TOKENIZE_FAILED', sourceTopic: 'audit.raw', sinceMs: now - 3_600_000 },
    limit: 5,
    json: true,
  });
  usage(() => parseListOptions({ topic: 'audit.dlq', limit: '0' }), /--limit 0/);
  usage(() => parseListOptions({ topic: 'audit.dlq', limit: 'ten' }), /--limit/);
  usage(() => parseListOptions({ topic: 'audit.dlq', service: ' ', limit: '1' }), /--service/);
  usage(() => parseListOptions({ topic: 'audit dlq', limit: '1' }), /--topic/);
});

test('redrive options: --service required, --reason unless --dry-run, a range on one partition in order', () => {
  const base = { topic: 'audit.dlq', service: 'tokenizer', reason: 'INC-2041 fixed' };
  assert.deepEqual(parseRedriveOptions({ ...base, from: '0:10', to: '0:20', code: 'TOKENIZE_FAILED', as: 'olga' }), {
    topic: 'audit.dlq',
    filter: { service: 'tokenizer', code: 'TOKENIZE_FAILED' },
    partition: 0,
    from: 10n,
    to: 20n,
    dryRun: false,
    force: false,
    as: 'olga',
    reason: 'INC-2041 fixed',
    json: false,
  });
  assert.equal(parseRedriveOptions({ topic: 'audit.dlq', service: 'hotstore', dryRun: true }).dryRun, true, 'a dry run needs no reason');
  assert.equal(parseRedriveOptions({ ...base, to: '2:7' }).partition, 2);
  usage(() => parseRedriveOptions({ topic: 'audit.dlq', reason: 'INC-2041 fixed' }), /--service is required/);
  usage(() => parseRedriveOptions({ topic: 'audit.dlq', service: 'tokenizer' }), /--reason is required/);
  usage(() => parseRedriveOptions({ ...base, reason: 'short' }), /at least 8 characters/);
  usage(() => parseRedriveOptions({ ...base, from: '0:10', to: '1:20' }), /different partitions/);
  usage(() => parseRedriveOptions({ ...base, from: '0:20', to: '0:10' }), /is after --to/);
  usage(() => parseRedriveOptions({ ...base, from: 'x' }), /--from/);
});

function stored(offset: number, overrides: Partial<StoredDeadLetter> = {}): StoredDeadLetter {
  return {
    partition: 0,
    offset: String(offset),
    timestamp: 0,
    service: 'tokenizer',
    code: 'TOKENIZE_FAILED',
    time: '2026-03-01T10:00:00.000Z',
    reason: 'event e-1 cannot be written after tokenization (KAFKA_UNAVAILABLE)',
    sourceTopic: 'audit.raw',
    sourcePartition: 1,
    sourceOffset: String(100 + offset),
    key: Buffer.from('exec-1'),
    value: Buffer.from('{"email":"bob@example.com"}'),
    originalHeaders: {},
    ...overrides,
  };
}

test('a dead letter read back has its DLQ headers parsed and its original headers kept apart; a redrive strips the DLQ headers', () => {
  const record = { topic: 'audit.raw', partition: 2, offset: '41', key: Buffer.from('exec-9'), value: Buffer.from('payload'), headers: { 'trace-id': Buffer.from('t-1') }, timestamp: '0' };
  const dlq = deadLetterMessage({ record, code: 'SCHEMA_NOT_FOUND', reason: 'schema id 7 unknown' }, 'tokenizer', new Date('2026-03-01T10:00:00Z'));
  const message = { key: dlq.key, value: dlq.value, headers: dlq.headers, offset: '5', timestamp: '1772359200000', attributes: 0 } as unknown as KafkaMessage;
  const letter = readDeadLetter(0, message);
  assert.deepEqual(
    [letter.service, letter.code, letter.sourceTopic, letter.sourcePartition, letter.sourceOffset, letter.time, letter.reason],
    ['tokenizer', 'SCHEMA_NOT_FOUND', 'audit.raw', 2, '41', '2026-03-01T10:00:00.000Z', 'schema id 7 unknown'],
  );
  assert.deepEqual(Object.keys(letter.originalHeaders), ['trace-id']);
  const again = redriveMessage(letter, { of: 'audit.dlq:0:5', id: 'r-1' });
  assert.equal(again.value, record.value);
  assert.equal(again.key, record.key);
  assert.deepEqual(Object.keys(again.headers!).sort(), ['auditline-redrive-id', 'auditline-redrive-of', 'trace-id']);
  for (const h of Object.values(DLQ_HEADERS)) assert.equal(again.headers![h], undefined);
  assert.equal(again.headers![REDRIVE_HEADERS.of], 'audit.dlq:0:5');
});

test('list lines and show fields carry no value and no reason text in the list', () => {
  const letter = stored(3, { originalHeaders: { 'trace-id': Buffer.from('t-3'), note: Buffer.from('mail carol@example.com') } });
  const row = listRow(letter);
  assert.deepEqual(Object.keys(row), ['dlq', 'time', 'service', 'code', 'source', 'bytes', 'redrive_of']);
  assert.ok(!JSON.stringify(row).includes('bob@') && !JSON.stringify(row).includes('cannot be written'));
  const shown = showFields('audit.dlq', letter);
  assert.ok(!JSON.stringify(shown).includes('bob@'), 'no value');
  assert.ok(!JSON.stringify(shown).includes('carol@example.com'), 'e-mail addresses in headers masked');
  assert.match(shown.value!, /^27 bytes, sha256 [0-9a-f]{64}, not the Confluent wire format/);
  assert.equal(shown['header trace-id'], 't-3');
  assert.equal(showFields('audit.dlq', stored(1, { value: Buffer.from([0, 0, 0, 0, 42, 1, 2]) })).value!.includes('schema id 42'), true);
});

test('filters and the summary per service and code', () => {
  const letters = [stored(0), stored(1, { service: 'hotstore', code: 'ROW_REJECTED', sourceTopic: 'audit.events' }), stored(2), stored(3, { time: '2026-02-01T00:00:00.000Z' })];
  assert.deepEqual(letters.filter((l) => matchesFilter(l, { service: 'tokenizer' })).map((l) => l.offset), ['0', '2', '3']);
  assert.deepEqual(letters.filter((l) => matchesFilter(l, { sourceTopic: 'audit.events' })).map((l) => l.offset), ['1']);
  assert.deepEqual(letters.filter((l) => matchesFilter(l, { sinceMs: Date.parse('2026-02-15T00:00:00Z') })).map((l) => l.offset), ['0', '1', '2']);
  assert.deepEqual(summarize(letters), [
    { service: 'tokenizer', code: 'TOKENIZE_FAILED', count: 3 },
    { service: 'hotstore', code: 'ROW_REJECTED', count: 1 },
  ]);
});

test('a redrive sends each source record once and never what an earlier redrive sent or may have sent, unless forced', () => {
  const none: RedriveHistory = { sent: new Set(), inDoubt: new Set(), sources: new Set() };
  const letters = [stored(0), stored(1), stored(2, { sourceOffset: '100' }), stored(3, { sourceTopic: '' }), stored(4, { sourceTopic: 'audit.dlq' })];
  const first = planRedrive(letters, none, { force: false, dlqTopic: 'audit.dlq', inputs: serviceInputs({}) });
  assert.deepEqual(first.send.map((l) => l.offset), ['0', '1']);
  assert.deepEqual(first.skipped.map((s) => [s.letter.offset, s.cause]), [['2', 'same source record'], ['3', 'no source topic'], ['4', 'no source topic']]);

  // Rows written before migration 0021 carry no value hash (`#` alone): they match by position.
  const history: RedriveHistory = { sent: new Set(['0:0#']), inDoubt: new Set(['0:1#']), sources: new Set(['audit.raw:1:100#', 'audit.raw:1:101#']) };
  const second = planRedrive(letters, history, { force: false, dlqTopic: 'audit.dlq', inputs: serviceInputs({}) });
  assert.deepEqual(second.send, []);
  assert.deepEqual(second.skipped.slice(0, 3).map((s) => s.cause), ['already redriven', 'in doubt', 'same source record']);

  const forced = planRedrive(letters, history, { force: true, dlqTopic: 'audit.dlq', inputs: serviceInputs({}) });
  assert.deepEqual(forced.send.map((l) => l.offset), ['0', '1'], '--force sends again, still each source record once');
});

test('a redrive sends a dead letter only to an input of the service that wrote it: a forged source topic is skipped, even with --force', () => {
  const none: RedriveHistory = { sent: new Set(), inDoubt: new Set(), sources: new Set() };
  const inputs = serviceInputs({});
  assert.deepEqual(Object.fromEntries([...inputs].map(([s, t]) => [s, [...t].sort()])), {
    tokenizer: ['audit.raw'],
    hotstore: ['audit.events'],
    archiver: ['audit.events'],
    alerts: ['audit.alerts.outbox', 'audit.alerts.signals', 'audit.events'],
  });
  const letters = [
    // Forged by a principal that may write audit.dlq: a "tokenizer" dead letter whose source would be audit.events.
    stored(0, { sourceTopic: 'audit.events', originalHeaders: { 'auditline-tokenized': Buffer.from('v1') } }),
    stored(1),
    stored(2, { service: 'hotstore', sourceTopic: 'audit.raw' }),
    stored(3, { service: 'hotstore', sourceTopic: 'audit.events' }),
    stored(4, { service: 'alerts', sourceTopic: 'audit.alerts.outbox' }),
    stored(5, { service: 'alerts', sourceTopic: 'audit.alerts.signals' }),
    stored(6, { service: 'alerts', sourceTopic: 'audit.raw' }),
    stored(7, { service: 'mallory', sourceTopic: 'audit.raw' }),
  ];
  for (const force of [false, true]) {
    const plan = planRedrive(letters, none, { force, dlqTopic: 'audit.dlq', inputs });
    assert.deepEqual(plan.send.map((l) => l.offset), ['1', '3', '4', '5']);
    assert.deepEqual(
      plan.skipped.map((s) => [s.letter.offset, s.cause]),
      [
        ['0', 'source topic is not an input of tokenizer'],
        ['2', 'source topic is not an input of hotstore'],
        ['6', 'source topic is not an input of alerts'],
        ['7', 'unknown service'],
      ],
    );
  }
  // The services' own topic settings, read as the services read them.
  const configured = serviceInputs({ AUDITLINE_TOKENIZER_TOPIC: 'x.raw', AUDITLINE_HOTSTORE_TOPIC: 'x.events', AUDITLINE_ALERTS_SIGNALS_TOPIC: 'x.signals' });
  assert.deepEqual([...configured.get('tokenizer')!], ['x.raw']);
  assert.deepEqual([...configured.get('hotstore')!], ['x.events']);
  assert.deepEqual([...configured.get('archiver')!], ['audit.events']);
  assert.deepEqual([...configured.get('alerts')!].sort(), ['audit.alerts.outbox', 'audit.events', 'x.signals']);
});

test('redrive refuses an unknown --service', () => {
  usage(() => parseRedriveOptions({ topic: 'audit.dlq', service: 'mallory', reason: 'INC-2041 fixed' }), /--service mallory: expected one of tokenizer, hotstore, archiver, alerts/);
});

test('this kafkajs has the cluster factory the DLQ reader asks high watermarks with (read_uncommitted ListOffsets)', () => {
  assert.equal(typeof clusterFactory(new Kafka({ brokers: ['127.0.0.1:1'] })), 'function');
});

test('the redrive log matches a dead letter by its DLQ position and its value\'s SHA-256: a new dead letter at a reused offset (the DLQ topic created again) is sent', () => {
  const inputs = serviceInputs({});
  const old = stored(0);
  const hash = valueSha256(old);
  assert.match(hash, /^[0-9a-f]{64}$/);
  const history: RedriveHistory = { sent: new Set([`0:0#${hash}`]), inDoubt: new Set([`0:1#${valueSha256(stored(1))}`]), sources: new Set([`audit.raw:1:100#${hash}`]) };
  const again = planRedrive([old, stored(1)], history, { force: false, dlqTopic: 'audit.dlq', inputs });
  assert.deepEqual(again.skipped.map((s) => s.cause), ['already redriven', 'in doubt'], 'the same dead letter, matched by position and hash');
  // Offsets 0 and 1 again, other dead letters (other values, other source records): not the ones redriven.
  const reused = [stored(0, { value: Buffer.from('another event'), sourceOffset: '900' }), stored(1, { value: Buffer.from('a third one'), sourceOffset: '901' })];
  assert.deepEqual(planRedrive(reused, history, { force: false, dlqTopic: 'audit.dlq', inputs }).send.map((l) => l.offset), ['0', '1']);
  // The same source position with another value is another record too (the source topic created again).
  assert.deepEqual(planRedrive([stored(5, { sourceOffset: '100', value: Buffer.from('new') })], history, { force: false, dlqTopic: 'audit.dlq', inputs }).send.length, 1);
  assert.equal(showFields('audit.dlq', old).value!.includes(`sha256 ${hash}`), true, 'the hash dlq show prints');
});

test('a DLQ read is complete once the offsets delivered or passed reach the end, never on a batch that began below the start', () => {
  const progress = new ReadProgress(new Map([[0, { start: 10n, end: 20n }], [1, { start: 0n, end: 2n }], [2, { start: 0n, end: 5n }]]));
  // A batch fetched from offset 0 (not the read's start), reported as processed up to 25: it proves nothing about [10, 20).
  progress.batch(0, '0', '25', 26);
  assert.deepEqual([...progress.pending()].sort(), [0, 1, 2]);
  assert.equal(progress.message(0, 5n), false, 'below the start');
  for (let o = 10n; o < 19n; o++) assert.equal(progress.message(0, o), true);
  assert.equal(progress.message(0, 12n), false, 'handed again');
  assert.ok(progress.pending().has(0), 'offset 19 not seen yet');
  progress.batch(0, '10', '19', 9); // 19: the marker that committed the transaction
  assert.ok(!progress.pending().has(0));
  progress.batch(1, '0', '1', 0); // markers or aborted records only
  assert.ok(!progress.pending().has(1));
  progress.batch(2, '0', '4', 3); // holds records eachMessage did not deliver
  assert.ok(progress.pending().has(2));
  progress.batch(2, '3', '4', 0); // begins past what was seen: 0-2 were not read
  assert.deepEqual([...progress.pending()], [2]);
  assert.equal(progress.done(), false);
  for (const o of [0n, 1n, 2n, 3n, 4n]) progress.message(2, o);
  assert.equal(progress.done(), true);
});

test('dlq list --help names every key --json prints, incomplete included (docs/cli.md)', async () => {
  const { spawnSync } = await import('node:child_process');
  const { assetPath } = await import('../../core/paths.js');
  const r = spawnSync(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'dlq', 'list', '--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const help = r.stdout.replace(/\s+/g, ' ');
  for (const key of ['dead_letters', 'summary', 'matched', 'incomplete']) assert.ok(help.includes(`"${key}":`), `--json key ${key} in: ${help}`);
});
