import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { loadHotstoreConfig } from '../../consumers/hotstore/config.js';
import { HotstoreService } from '../../consumers/hotstore/service.js';
import { LocalKeyWrapper, reveal, SubjectKeyStore, TokenizerAuditLog, TokenKey } from '../../consumers/tokenizer/index.js';
import { rewriteTokens, type PiiToken } from '../../consumers/tokenizer/pii-format.js';
import { frame, unwrapPayload, type AuditEvent, type DecisionRecorded, type ExecutionStarted, type StepFinished } from '../../schemas/index.js';
import { canaryValues, piiExecution, testKeys } from '../helpers/tokenizer-fixtures.js';
import {
  clickhouse,
  createTokenizerDatabase,
  createTokenizerTopics,
  decodeAll,
  dropTokenizerTopics,
  publish,
  readTopic,
  runCli,
  startTokenizerChild,
  tokenizerEnv,
  type TokenizerNames,
} from '../helpers/tokenizer-stack.js';

const client = clickhouse();
const keys = testKeys();
let database: string;
let names: TokenizerNames;
const hotstoreGroup = `hs-${Date.now().toString(36)}`;

// A (failed) and B (success) share the customer; C (failed) is another customer.
const emailA = `canary-${Date.now().toString(36)}-a@example.com`;
const A = piiExecution({ email: emailA, status: 'failed', phone: '+49 30 5550 1234' });
const B = piiExecution({ email: emailA, status: 'success', phone: '+49 30 5550 1234' });
const C = piiExecution({ status: 'failed', phone: '+1 (555) 010-9876' });
const canaries = [...new Set([...canaryValues(A), ...canaryValues(B), ...canaryValues(C)])];
const garbage = Buffer.from('not avro at all');
const unknownSchema = frame(987_654_321, Buffer.from([2, 4, 6]));

before(async () => {
  database = await createTokenizerDatabase(client);
  names = await createTokenizerTopics('tk-pipe');
});

after(async () => {
  await dropTokenizerTopics(names, [hotstoreGroup]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const token = (event: AuditEvent, field: string): PiiToken => {
  const input = (unwrapPayload(event.payload).value as ExecutionStarted).input;
  let found: PiiToken | undefined;
  rewriteTokens(input, (t) => void (t.f === field ? (found ??= t) : undefined));
  return found!;
};

function assertNoCanary(where: string, text: string): void {
  for (const c of canaries) assert.ok(!text.includes(c), `${where} contains the cleartext canary ${c.slice(0, 8)}…`);
}

test('PII canary: nothing readable leaves the tokenizer (events, logs, metrics), tokens are deterministic, poison goes to the DLQ; reveal and erasure work on the stored copies', { timeout: 90_000 }, async () => {
  await publish(names.raw, [...A, { key: A[0]!.execution_id, raw: garbage }, ...B, { key: B[0]!.execution_id, raw: unknownSchema }, ...C]);
  const child = startTokenizerChild(tokenizerEnv(names, database, keys, { AUDITLINE_TOKENIZER_LOG_LEVEL: 'debug' }));
  try {
    const records = await readTopic(names.events, 12, { timeoutMs: 30_000, settleMs: 500 });
    assert.equal(records.length, 12, 'every good event exactly once (read_committed)');
    for (const r of records) {
      assertNoCanary(`record ${r.partition}/${r.offset}`, `${r.key}${r.value.toString('latin1')}${JSON.stringify(r.headers)}`);
      assert.equal(r.headers['auditline-tokenized'], 'v1');
    }
    const events = await decodeAll(names.events, records);
    assertNoCanary('decoded events', JSON.stringify(events));
    const started = (x: AuditEvent[]) => events.find((e) => e.event_id === x[0]!.event_id)!;
    assert.equal(token(started(A), 'customer_email').t, token(started(B), 'customer_email').t, 'same e-mail, two executions: same token');
    assert.notEqual(token(started(A), 'customer_email').t, token(started(C), 'customer_email').t);
    assert.equal(token(started(A), 'customer_email').k, token(started(B), 'customer_email').k, 'same subject, same key');
    assert.notEqual(token(started(A), 'customer_email').k, token(started(C), 'customer_email').k);
    assert.equal(token(started(A), 'customer_email').m, `c***@example.com`);
    const failedStep = events.find((e) => e.event_id === A[1]!.event_id)!;
    assert.match((unwrapPayload(failedStep.payload).value as StepFinished).error!.message, /^card of \[\[pii:c\*\*\*@example\.com\|[\w-]+\]\] declined; call \[\[pii:\*\*\*34\|[\w-]+\]\] after 2024-01-15$/);
    assert.equal(JSON.parse((unwrapPayload(started(A).payload).value as ExecutionStarted).input).order_id, 'ORD-2024-000123', 'non-PII values stay readable');

    const letters = await readTopic(names.dlq, 2);
    const byCode = Object.fromEntries(letters.map((l) => [l.headers['auditline-dlq-error-code'], l]));
    assert.deepEqual(Object.keys(byCode).sort(), ['SCHEMA_NOT_FOUND', 'WIRE_FORMAT_INVALID']);
    assert.match(byCode.WIRE_FORMAT_INVALID!.headers['auditline-dlq-reason']!, /not in the Confluent wire format/);
    assert.equal(byCode.WIRE_FORMAT_INVALID!.headers['auditline-dlq-service'], 'tokenizer');
    assert.equal(byCode.WIRE_FORMAT_INVALID!.headers['auditline-dlq-source-topic'], names.raw);
    assert.deepEqual(byCode.WIRE_FORMAT_INVALID!.value, garbage);

    const port = await child.port;
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assertNoCanary('/metrics', metrics);
    assert.match(metrics, /auditline_tokenizer_records_total\{outcome="processed"\} 12/);
    assert.match(metrics, /auditline_tokenizer_dead_letters_total\{error_code="WIRE_FORMAT_INVALID"\} 1/);
    assert.match(metrics, /auditline_tokenizer_pii_values_total\{source="email"\} \d+/);
    assert.match(metrics, /auditline_tokenizer_transactions_total\{outcome="committed"\} [1-9]/);
    // Freshness is observed in the transactional (handler-commit) mode too: every settled record, dead letters included.
    assert.match(metrics, /^auditline_tokenizer_freshness_seconds_count 14$/m);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
  } finally {
    child.process.kill('SIGTERM');
  }
  assert.equal(await child.exited, 0, 'graceful stop');
  assertNoCanary('tokenizer logs (debug level)', child.output());
  assert.ok(child.logs().some((l) => l.msg === 'batch committed'), 'debug logs were written and checked');

  // The hot store stores the tokenized events; reveal reads it.
  const hotstore = new HotstoreService(
    loadHotstoreConfig({ ...process.env, AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_HOTSTORE_TOPIC: names.events, AUDITLINE_HOTSTORE_DLQ_TOPIC: names.dlq, AUDITLINE_HOTSTORE_GROUP_ID: hotstoreGroup, AUDITLINE_HOTSTORE_FLUSH_MS: '100' }),
    { logger: createLogger('hotstore-test', 'silent'), registry: new Registry() },
  );
  await hotstore.start(new AbortController().signal);
  try {
    const stored = async () => Number((await (await client.query({ query: `SELECT count() AS n FROM ${database}.events FINAL`, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
    for (let i = 0; i < 150 && (await stored()) < 12; i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(await stored(), 12);
  } finally {
    await hotstore.stop();
  }
  // Every row of every table of the database, every column (names, conditions, outputs, errors, keys, mappings).
  const tables = await (await client.query({ query: `SELECT name FROM system.tables WHERE database = {db:String} AND NOT is_temporary AND engine NOT LIKE '%View'`, query_params: { db: database }, format: 'JSONEachRow' })).json<{ name: string }>();
  let dump = '';
  for (const { name } of tables) dump += await (await client.query({ query: `SELECT * FROM ${database}.\`${name}\``, format: 'JSONEachRow' })).text();
  assert.ok(tables.some((t) => t.name === 'decisions') && dump.includes('$pii') && dump.includes('[[pii:'), 'the dump holds the stored events, tokens and inline markers');
  assertNoCanary('hot store (every table and column)', dump);

  const cliEnv = { AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey };
  const revealCli = (id: string, role: string, extra: string[] = []) => runCli(['reveal', id, '--as', 'u-17', '--role', role, '--reason', 'INC-4711 reproduce the failure', '--format', 'json', ...extra], cliEnv);
  const idA = A[0]!.execution_id;
  const idB = B[0]!.execution_id;
  const idC = C[0]!.execution_id;

  const engA = await revealCli(idA, 'engineering');
  assert.equal(engA.code, 0, engA.stderr);
  const engAOut = JSON.parse(engA.stdout) as { outcome: string; fields: { name: string; text: string; revealed: number }[] };
  assert.equal(engAOut.outcome, 'allowed');
  assert.deepEqual(JSON.parse(engAOut.fields[0]!.text), JSON.parse((unwrapPayload(A[0]!.payload).value as ExecutionStarted).input), 'the execution input, exactly as produced');
  assert.equal(engAOut.fields[1]!.name, 'step[1].attempt[1].input_data');
  assert.deepEqual(JSON.parse(engAOut.fields[1]!.text), JSON.parse((unwrapPayload(A[1]!.payload).value as StepFinished).input_data));
  const allA = JSON.parse((await revealCli(idA, 'engineering', ['--all'])).stdout) as { fields: { name: string; text: string }[] };
  assert.equal(allA.fields.find((f) => f.name === 'step[1].attempt[1].error_message')!.text, (unwrapPayload(A[1]!.payload).value as StepFinished).error!.message);
  const condition = allA.fields.find((f) => f.name === 'decision[3].branch_condition');
  assert.equal(condition?.text, (unwrapPayload(A[2]!.payload).value as DecisionRecorded).branch_condition, 'a sox free-text field with a token is revealed too');
  assert.equal(allA.fields.find((f) => f.name.endsWith('.step_name')), undefined, 'a free-text field without a token is not listed');

  const engB = await revealCli(idB, 'engineering');
  assert.equal(engB.code, 6, 'engineering may not reveal a successful execution');
  assert.match(engB.stderr, /reveal refused: role engineering may reveal only FAILED executions; execution \S+ is success/);
  assertNoCanary('refused reveal output', engB.stdout + engB.stderr);
  const stranger = await revealCli(idA, 'marketing');
  assert.equal(stranger.code, 6);
  assert.match(stranger.stderr, /role "marketing" may not reveal PII/);
  const compB = await revealCli(idB, 'compliance');
  assert.equal(compB.code, 0, compB.stderr);
  assert.ok(compB.stdout.includes(emailA));

  const log = new TokenizerAuditLog(client, database);
  assert.deepEqual(
    (await log.accessRecords(idA)).map((r) => [r.principal, r.role, r.outcome, r.executionStatus, r.reason]),
    [
      ['u-17', 'engineering', 'allowed', 'failed', 'INC-4711 reproduce the failure'],
      ['u-17', 'engineering', 'allowed', 'failed', 'INC-4711 reproduce the failure'],
      ['u-17', 'marketing', 'refused', 'failed', 'INC-4711 reproduce the failure'],
    ],
  );
  const refusedB = (await log.accessRecords(idB)).find((r) => r.outcome === 'refused')!;
  assert.match(refusedB.detail, /only FAILED/);
  assert.deepEqual(refusedB.fields, ['execution.input', 'step[1].attempt[1].input_data']);

  // Erasure of A's subject: keys physically gone, recorded; A and B unreadable everywhere, C still readable.
  const erase = await runCli(['erase', '--email', emailA.toUpperCase(), '--as', 'dpo-1', '--reason', `GDPR request 77 from ${emailA}`], cliEnv);
  assert.equal(erase.code, 0, erase.stderr);
  const subject = new TokenKey(Buffer.from(keys.tokenKey, 'base64')).subject(`email:${emailA}`);
  assert.match(erase.stdout, new RegExp(`erased subject ${subject}: 1 key\\(s\\) destroyed \\(${token(await decodeOne(A[0]!), 'customer_email').k}\\)`));
  const left = await (await client.query({ query: `SELECT count() AS n FROM ${database}.subject_keys WHERE subject = {s:String}`, query_params: { s: subject }, format: 'JSONEachRow' })).json<{ n: string }>();
  assert.equal(Number(left[0]!.n), 0, 'no row left, not even a flagged one');
  const [erasure] = await log.erasureRecords(subject);
  assert.equal(erasure!.principal, 'dpo-1');
  assert.equal(erasure!.kind, 'request');
  assert.equal(erasure!.keyIds.length, 1);
  assert.equal(erasure!.reason, 'GDPR request 77 from c***@example.com', 'no PII in the erasure record');

  const afterA = await revealCli(idA, 'compliance');
  assert.equal(afterA.code, 7, 'nothing decryptable after erasure');
  assertNoCanary('reveal after erasure', afterA.stdout + afterA.stderr);
  const afterC = await revealCli(idC, 'compliance');
  assert.equal(afterC.code, 0, afterC.stderr);
  assert.ok(afterC.stdout.includes(canaryValues(C)[0]!), 'another subject still reveals');

  // The copies in audit.events (what the archive keeps) are unreadable too.
  const [fromTopicA, fromTopicC] = [await decodeOne(A[0]!), await decodeOne(C[0]!)];
  const keysStore = new SubjectKeyStore(client, database, new LocalKeyWrapper(Buffer.from(keys.masterKey, 'base64')), { cacheTtlMs: 0, rotationMs: 0 });
  const viaTopic = (e: AuditEvent) =>
    reveal(
      { principal: 'u-18', role: 'legal', purpose: 'case 2024-17 evidence', executionId: e.execution_id, status: 'failed', fields: [{ name: 'execution.input', text: (unwrapPayload(e.payload).value as ExecutionStarted).input }] },
      { keys: keysStore, log },
    );
  assert.equal((await viaTopic(fromTopicA)).outcome, 'unrecoverable');
  const revealedC = await viaTopic(fromTopicC);
  assert.equal(revealedC.outcome, 'allowed');
  assert.equal(JSON.parse(revealedC.fields[0]!.text).customer_email, canaryValues(C)[0]);
});

async function decodeOne(original: AuditEvent): Promise<AuditEvent> {
  const events = await decodeAll(names.events, await readTopic(names.events, 12));
  return events.find((e) => e.event_id === original.event_id)!;
}
