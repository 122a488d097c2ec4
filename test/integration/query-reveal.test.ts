import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eventToRows, HotstoreWriter } from '../../consumers/hotstore/index.js';
import { DEFAULT_PII_FIELDS, LocalKeyWrapper, SubjectKeyStore, TokenizerAuditLog, TokenKey, tokenDigest } from '../../consumers/tokenizer/index.js';
import { DETECTION_KINDS } from '../../core/pii/detectors.js';
import { scanEvent, sealEvent } from '../../consumers/tokenizer/tokenize-event.js';
import { scannedFieldPaths } from '../../core/pii/scanned-fields.js';
import { unwrapPayload, type AuditEvent } from '../../schemas/index.js';
import { randomUUID } from 'node:crypto';
import { tempDir } from '../helpers/temp-dir.js';
import { canaryValues, piiExecution, testKeys } from '../helpers/tokenizer-fixtures.js';
import { clickhouse, createTokenizerDatabase, runCli } from '../helpers/tokenizer-stack.js';

const client = clickhouse();
const keys = testKeys();
let database: string;
let env: Record<string, string>;
const failed = piiExecution({ status: 'failed' });
/** A failed execution whose ExecutionStarted row is missing (dead-lettered, or expired before its steps). */
const headless = piiExecution({ status: 'failed' });
const succeeded = piiExecution({ status: 'success' });
const reason = 'INC-4711 reproduce the failure';

/** Tokenizes events as the tokenizer does (scan, subject key from the real key store, seal) and stores them through the hot store writer. */
async function tokenizeAndStore(events: readonly AuditEvent[], keep: (e: AuditEvent) => boolean = () => true): Promise<void> {
  const tokenKey = new TokenKey(Buffer.from(keys.tokenKey, 'base64'));
  const store = new SubjectKeyStore(client, database, new LocalKeyWrapper(Buffer.from(keys.masterKey, 'base64')), { cacheTtlMs: 60_000, rotationMs: 86_400_000 });
  const policy = { piiFields: new Set<string>(DEFAULT_PII_FIELDS), detectors: new Set(DETECTION_KINDS), subjectEmailField: 'customer_email' };
  const paths = scannedFieldPaths();
  const email = canaryValues(events)[0]!;
  const subject = tokenKey.subject(`email:${email.toLowerCase()}`);
  const key = (await store.activeKeys([subject])).get(subject)!;
  const tokenized = events.map((e) => {
    const copy = structuredClone(e);
    sealEvent(scanEvent(copy, {}, policy, paths), { tokenKey, keyId: key.keyId, key: key.key });
    return copy;
  });
  const { rejected } = await new HotstoreWriter(client, database).write(tokenized.filter(keep).map((e, i) => eventToRows(e, { topic: 'test', partition: 0, offset: String(i) })));
  assert.deepEqual(rejected, []);
}

before(async () => {
  database = await createTokenizerDatabase(client);
  env = { AUDITLINE_CLICKHOUSE_DATABASE: database, AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey, AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey };
  await tokenizeAndStore(failed);
  await tokenizeAndStore(succeeded);
  await tokenizeAndStore(headless, (e) => !('io.auditline.events.ExecutionStarted' in e.payload));
});

after(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const idOf = (events: readonly AuditEvent[]) => events[0]!.execution_id;
const records = (events: readonly AuditEvent[]) => new TokenizerAuditLog(client, database).accessRecords(idOf(events));

test('query inputs --reveal judges the status by the outcome, as reveal does: a failed execution without its start row is revealed to engineering', { timeout: 60_000 }, async () => {
  const allowed = await runCli(['query', 'inputs', idOf(headless), '--reveal', '--as', 'u-17', '--role', 'engineering', '--reason', reason, '--format', 'json'], env);
  assert.equal(allowed.code, 0, allowed.stderr);
  assert.match(allowed.stderr, /revealed for execution \S+ \(failed\)/);
  const rows = JSON.parse(allowed.stdout) as { source: string; input: string }[];
  assert.deepEqual(rows.map((r) => r.source), ['step']);
  assert.ok(rows[0]!.input.includes(canaryValues(headless)[0]!), 'the step input is revealed');
});

test('query inputs --reveal: an allowed role sees the cleartext of a failed execution, a refused one gets the reason and exit 6; both are recorded', { timeout: 60_000 }, async () => {
  const [email, name] = canaryValues(failed);
  const plain = await runCli(['query', 'inputs', idOf(failed), '--format', 'json'], env);
  assert.equal(plain.code, 0, plain.stderr);
  assert.ok(!plain.stdout.includes(email!), 'without --reveal the inputs stay tokenized');

  const allowed = await runCli(['query', 'inputs', idOf(failed), '--reveal', '--as', 'u-17', '--role', 'engineering', '--reason', reason, '--format', 'json'], env);
  assert.equal(allowed.code, 0, allowed.stderr);
  const rows = JSON.parse(allowed.stdout) as { source: string; step_id: number; input: string }[];
  assert.deepEqual(rows.map((r) => [r.source, r.step_id]), [['execution', 0], ['step', 1]]);
  const input = JSON.parse(rows[0]!.input) as { customer_email: string; customer_name: string };
  assert.equal(input.customer_email, email);
  assert.equal(input.customer_name, name);
  assert.ok(rows[1]!.input.includes(email!), 'the step input is revealed too');
  assert.match(allowed.stderr, /recorded in the access log/);

  const refused = await runCli(['query', 'inputs', idOf(succeeded), '--reveal', '--as', 'u-17', '--role', 'engineering', '--reason', reason, '--format', 'json'], env);
  assert.equal(refused.code, 6);
  assert.match(refused.stderr, /reveal refused: role engineering may reveal only FAILED executions; execution \S+ is success/);
  assert.equal(refused.stdout, '');
  assert.ok(!refused.stderr.includes(canaryValues(succeeded)[0]!));

  const [ok] = await records(failed);
  assert.deepEqual([ok!.principal, ok!.identifiedBy, ok!.role, ok!.outcome, ok!.executionStatus, ok!.reason], ['u-17', 'claimed', 'engineering', 'allowed', 'failed', reason]);
  assert.deepEqual(ok!.fields, ['execution.input', 'step[1].attempt[1].input_data']);
  assert.ok(ok!.valuesRevealed > 0);
  const [no] = await records(succeeded);
  assert.deepEqual([no!.principal, no!.outcome, no!.valuesRevealed], ['u-17', 'refused', 0]);
  assert.match(no!.detail, /may reveal only FAILED/);

  const usage = await runCli(['query', 'inputs', idOf(failed), '--role', 'engineering'], env);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--as, --role and --reason go with --reveal/);
});

test('authenticated callers: with a principals file the role must be held by the OS account or token, --as cannot impersonate; refusals are recorded', { timeout: 60_000 }, async () => {
  const file = path.join(tempDir('reveal-principals'), 'principals.yaml');
  const token = 'dpo-token-0123456789abcdef';
  writeFileSync(
    file,
    `principals:\n  u-17:\n    roles: [engineering]\n    os_users: [${JSON.stringify(os.userInfo().username)}]\n  dpo-1:\n    roles: [compliance]\n    token_sha256: [${tokenDigest(token)}]\n`,
    { mode: 0o600 },
  );
  const authEnv = { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: file };
  const before = (await records(succeeded)).length;

  const claimsCompliance = await runCli(['query', 'inputs', idOf(succeeded), '--reveal', '--role', 'compliance', '--reason', reason], authEnv);
  assert.equal(claimsCompliance.code, 6, 'the OS account is u-17, who holds engineering only');
  assert.match(claimsCompliance.stderr, /reveal refused: u-17 does not hold role "compliance" in the principals file \(holds: engineering\)/);

  const impersonates = await runCli(['reveal', idOf(succeeded), '--as', 'dpo-1', '--role', 'compliance', '--reason', reason], authEnv);
  assert.equal(impersonates.code, 6);
  assert.match(impersonates.stderr, /--as dpo-1 is not the caller: authenticated as u-17/);

  const withToken = await runCli(['query', 'inputs', idOf(succeeded), '--reveal', '--role', 'compliance', '--reason', reason, '--format', 'json'], { ...authEnv, AUDITLINE_REVEAL_TOKEN: token });
  assert.equal(withToken.code, 0, withToken.stderr);
  assert.ok(withToken.stdout.includes(canaryValues(succeeded)[0]!), 'the token holder acts as dpo-1 with compliance');

  const badToken = await runCli(['query', 'inputs', idOf(succeeded), '--reveal', '--role', 'compliance', '--reason', reason], { ...authEnv, AUDITLINE_REVEAL_TOKEN: 'guessed' });
  assert.equal(badToken.code, 6);
  assert.match(badToken.stderr, /token:unknown does not hold role "compliance" in the principals file \(holds: none\)/);

  // replay --reveal goes through the same identification: --as does not make the OS account u-17 into dpo-1.
  const replayImpersonates = await runCli(['replay', idOf(succeeded), '--source', 'hotstore', '--reveal', '--as', 'dpo-1', '--role', 'compliance', '--reason', reason], authEnv);
  assert.equal(replayImpersonates.code, 6, replayImpersonates.stderr);
  assert.match(replayImpersonates.stderr, /reveal refused: --as dpo-1 is not the caller: authenticated as u-17/);
  assert.ok(!replayImpersonates.stdout.includes(canaryValues(succeeded)[0]!), 'nothing revealed');

  const log = (await records(succeeded)).slice(before);
  assert.deepEqual(
    log.map((r) => [r.principal, r.identifiedBy, r.role, r.outcome]),
    [
      ['u-17', 'os-user', 'compliance', 'refused'],
      ['u-17', 'os-user', 'compliance', 'refused'],
      ['dpo-1', 'token', 'compliance', 'allowed'],
      ['token:unknown', 'token', 'compliance', 'refused'],
      ['u-17', 'os-user', 'compliance', 'refused'],
    ],
  );
});

test('one token digest listed for two principals is refused: the token does not silently act as the last one listed (legal) and reveal a successful execution', { timeout: 60_000 }, async () => {
  const file = path.join(tempDir('reveal-principals-dup'), 'principals.yaml');
  const token = 'eng-token-0123456789abcdef';
  // A copy-paste slip: the engineer's token digest under the legal principal too.
  writeFileSync(file, `principals:\n  eng-1:\n    roles: [engineering]\n    token_sha256: [${tokenDigest(token)}]\n  legal-1:\n    roles: [legal]\n    token_sha256: [${tokenDigest(token)}]\n`, { mode: 0o600 });
  const before = (await records(succeeded)).length;
  const asLegal = await runCli(['reveal', idOf(succeeded), '--role', 'legal', '--reason', reason, '--format', 'json'], { ...env, AUDITLINE_REVEAL_PRINCIPALS_FILE: file, AUDITLINE_REVEAL_TOKEN: token });
  assert.ok(!asLegal.stdout.includes(canaryValues(succeeded)[0]!), 'nothing revealed');
  assert.equal(asLegal.code, 2, asLegal.stderr);
  assert.match(asLegal.stderr, /AUDITLINE_REVEAL_PRINCIPALS_FILE: .*token_sha256.*the same token digest is listed for both eng-1 and legal-1/);
  assert.ok(!asLegal.stderr.includes(tokenDigest(token)), 'the message does not show the digest');
  assert.equal((await records(succeeded)).length, before, 'a configuration error, before anything is read or recorded');
});

test('an execution whose outcomes disagree (a second ExecutionFinished saying failed) is "conflicting": a failed-only role is refused, a role for any status is not', { timeout: 60_000 }, async () => {
  const ok = piiExecution({ status: 'success' });
  await tokenizeAndStore(ok);
  const forged = structuredClone(ok.find((e) => unwrapPayload(e.payload).kind === 'ExecutionFinished')!);
  forged.event_id = randomUUID();
  (unwrapPayload(forged.payload).value as { status: string }).status = 'failed';
  // Written as the hot store would write it (its PII fields do not matter here: only its status is read).
  const { rejected } = await new HotstoreWriter(client, database).write([eventToRows(forged, { topic: 'test', partition: 0, offset: '99' })]);
  assert.deepEqual(rejected, []);

  const engineering = await runCli(['query', 'inputs', idOf(ok), '--reveal', '--as', 'u-17', '--role', 'engineering', '--reason', reason], env);
  assert.equal(engineering.code, 6, engineering.stderr);
  assert.match(engineering.stderr, /reveal refused: role engineering may reveal only FAILED executions; execution \S+ is conflicting/);
  assert.ok(!engineering.stdout.includes(canaryValues(ok)[0]!));
  const viaReveal = await runCli(['reveal', idOf(ok), '--as', 'u-17', '--role', 'engineering', '--reason', reason], env);
  assert.equal(viaReveal.code, 6, viaReveal.stderr);
  assert.match(viaReveal.stderr, /is conflicting/);
  const compliance = await runCli(['query', 'inputs', idOf(ok), '--reveal', '--as', 'dpo-1', '--role', 'compliance', '--reason', reason, '--format', 'json'], env);
  assert.equal(compliance.code, 0, compliance.stderr);
  assert.ok(compliance.stdout.includes(canaryValues(ok)[0]!));
  assert.deepEqual((await records(ok)).map((r) => [r.role, r.outcome, r.executionStatus]).sort(), [['compliance', 'allowed', 'conflicting'], ['engineering', 'refused', 'conflicting'], ['engineering', 'refused', 'conflicting']]);
});

test('an unknown execution: exit 5 only when that is why the reveal is refused, and the attempt is recorded (replay too); a missing --as is wrong usage and records nothing', { timeout: 60_000 }, async () => {
  const unknown = randomUUID();
  const countFor = async (id: string) =>
    Number((await (await client.query({ query: `SELECT count() AS n FROM ${database}.pii_access_log WHERE execution_id = {id:String}`, query_params: { id }, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
  const allowedRole = await runCli(['reveal', unknown, '--as', 'u-17', '--role', 'compliance', '--reason', reason], env);
  assert.equal(allowedRole.code, 5, allowedRole.stderr);
  assert.match(allowedRole.stderr, /is not in the hot store/);
  const refusedRole = await runCli(['reveal', unknown, '--as', 'u-17', '--role', 'marketing', '--reason', reason], env);
  assert.equal(refusedRole.code, 6, 'refused for the role: the exit code says refused, as the message does');
  assert.match(refusedRole.stderr, /role "marketing" may not reveal PII/);
  const replayed = await runCli(['replay', unknown, '--source', 'hotstore', '--reveal', '--as', 'u-17', '--role', 'compliance', '--reason', reason], env);
  assert.equal(replayed.code, 5, replayed.stderr);
  assert.match(replayed.stderr, /reveal refused: execution \S+ is not in the hot store \(request \S+ recorded/);
  assert.equal(await countFor(unknown), 3, 'every attempt on record, replay included');

  const other = randomUUID();
  for (const args of [['reveal', other], ['query', 'inputs', other, '--reveal'], ['replay', other, '--source', 'hotstore', '--reveal']]) {
    const r = await runCli([...args, '--role', 'compliance', '--reason', reason], env);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /--as is required/);
  }
  assert.equal(await countFor(other), 0, 'no nameless record');
});
