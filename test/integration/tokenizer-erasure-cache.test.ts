import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { eraseSubjects, LocalKeyWrapper, reveal, SubjectKeyStore, TokenizerAuditLog, TokenKey } from '../../consumers/tokenizer/index.js';
import { isAuditlineError } from '../../core/errors.js';
import { rewriteTokens, type PiiToken } from '../../consumers/tokenizer/pii-format.js';
import { unwrapPayload, type AuditEvent, type ExecutionStarted } from '../../schemas/index.js';
import { piiExecution, testKeys } from '../helpers/tokenizer-fixtures.js';
import { clickhouse, createTokenizerDatabase, createTokenizerTopics, decodeAll, dropTokenizerTopics, publish, readTopic, runCli, startTokenizerChild, tokenizerEnv, type TokenizerNames } from '../helpers/tokenizer-stack.js';

// A running tokenizer caches each subject's key for AUDITLINE_TOKENIZER_KEY_CACHE_TTL_MS (60 s by default). After
// `erase`, it encrypted the returning customer's new values under the destroyed, cached key for up to that long:
// values nobody could ever reveal.

const client = clickhouse();
const keys = testKeys();
const tokenKey = new TokenKey(Buffer.from(keys.tokenKey, 'base64'));
const wrapper = new LocalKeyWrapper(Buffer.from(keys.masterKey, 'base64'));
const DAY = 86_400_000;
/** The default of AUDITLINE_TOKENIZER_KEY_CACHE_TTL_MS. */
const DEFAULT_CACHE_TTL_MS = 60_000;
let database: string;
let names: TokenizerNames | undefined;

before(async () => {
  database = await createTokenizerDatabase(client);
});

after(async () => {
  if (names) await dropTokenizerTopics(names);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const subject = (email: string) => tokenKey.subject(`email:${email}`);
const log = () => new TokenizerAuditLog(client, database);
/** `erase --email` as the CLI runs it: its own store, no cache shared with the tokenizer's. */
const erase = (email: string) =>
  eraseSubjects(
    { client, database, tokenKey, keys: new SubjectKeyStore(client, database, undefined, { cacheTtlMs: 0, rotationMs: DAY }), log: log() },
    { email, principal: 'dpo-1', reason: 'GDPR request, customer came back' },
  );

test('after erase returns, a running key store gives the erased subject a new stored key at once (not the destroyed cached one), carrying the erasure; other cached subjects keep theirs', { timeout: 60_000 }, async () => {
  const email = `returning-${Date.now()}@example.com`;
  const erased = subject(email);
  const other = subject(`bystander-${Date.now()}@example.com`);
  const tokenizer = new SubjectKeyStore(client, database, wrapper, { cacheTtlMs: DEFAULT_CACHE_TTL_MS, rotationMs: DAY });
  const before = await tokenizer.activeKeys([erased, other]);
  const old = before.get(erased)!;
  await erase(email);

  const afterErase = await tokenizer.activeKeys([erased, other]);
  const fresh = afterErase.get(erased)!;
  assert.notEqual(fresh.keyId, old.keyId, 'a new key, well within the cache TTL, not the erased one');
  const stored = await new SubjectKeyStore(client, database, wrapper, { cacheTtlMs: 0, rotationMs: DAY }).keysById([old.keyId, fresh.keyId]);
  assert.deepEqual([...stored.keys()], [fresh.keyId], 'the new key is stored (what it encrypts can be revealed); the erased one is gone');
  const [record] = await log().erasureRecords(erased);
  assert.equal(fresh.erasedAt, record!.at, 'the new key carries the erasure: values published before it are still sealed under no stored key');
  assert.equal(afterErase.get(other)!.keyId, before.get(other)!.keyId, 'a subject not erased keeps its cached key');
  assert.equal((await tokenizer.activeKeys([erased])).get(erased)!.keyId, fresh.keyId, 'the new key is cached in turn (no new key per batch)');
});

test('a lookup that waited (its erasure check is old) and meanwhile the subject was erased and got a new key from another instance: the key it finds carries the erasure', { timeout: 60_000 }, async () => {
  const email = `waited-${Date.now()}@example.com`;
  const s = subject(email);
  let queries = 0;
  let meanwhile: Promise<unknown> | undefined;
  // The real client; the lookup's queries after its first (the erasure check) reach the server only once the erasure
  // and another instance's new key are done: what happens when a lookup waits its turn behind other batches' lookups.
  const waiting = new Proxy(client, {
    get(target, name, receiver) {
      if (name !== 'query') return Reflect.get(target, name, receiver) as unknown;
      return async (params: Parameters<typeof target.query>[0]) => {
        if ((queries += 1) >= 2) {
          meanwhile ??= (async () => {
            await erase(email);
            await new SubjectKeyStore(client, database, wrapper, { cacheTtlMs: DEFAULT_CACHE_TTL_MS, rotationMs: DAY }).activeKeys([s]);
          })();
          await meanwhile;
        }
        return target.query(params);
      };
    },
  });
  const tokenizer = new SubjectKeyStore(waiting, database, wrapper, { cacheTtlMs: DEFAULT_CACHE_TTL_MS, rotationMs: DAY });
  const key = (await tokenizer.activeKeys([s])).get(s)!;
  assert.ok(meanwhile, 'the erasure ran inside the lookup');
  const [record] = await log().erasureRecords(s);
  assert.equal(key.erasedAt, record!.at, 'values published before the erasure are not sealed under the stored key made after it');
});

test('a batch whose keys are all cached still fails retriably when ClickHouse cannot be asked about erasures (no event sealed under an erased key, none dropped)', { timeout: 60_000 }, async () => {
  const s = subject(`cached-${Date.now()}@example.com`);
  const unreachable = createClient({ url: 'http://127.0.0.1:1', request_timeout: 2_000 });
  let down = false;
  // The real client, and from `down` on a real client of an address where nothing listens.
  const switching = new Proxy(client, {
    get(target, name) {
      const to = down ? unreachable : target;
      const value = Reflect.get(to, name) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(to) : value;
    },
  }) as ClickHouseClient;
  try {
    const tokenizer = new SubjectKeyStore(switching, database, wrapper, { cacheTtlMs: DEFAULT_CACHE_TTL_MS, rotationMs: DAY });
    const cached = (await tokenizer.activeKeys([s])).get(s)!;
    down = true;
    await assert.rejects(tokenizer.activeKeys([s]), (err: unknown) => isAuditlineError(err, 'CLICKHOUSE_UNAVAILABLE') && err.retriable);
    down = false;
    assert.equal((await tokenizer.activeKeys([s])).get(s)!.keyId, cached.keyId, 'once ClickHouse answers, the cached key is used again');
  } finally {
    await unreachable.close();
  }
});

const piiToken = (event: AuditEvent): PiiToken => {
  let found: PiiToken | undefined;
  rewriteTokens((unwrapPayload(event.payload).value as ExecutionStarted).input, (t) => void (t.f === 'customer_email' ? (found ??= t) : undefined));
  return found!;
};

test('service: a running tokenizer (default key cache TTL) encrypts a returning customer\'s events published after `erase` under a new key an allowed role can reveal', { timeout: 120_000 }, async () => {
  names = await createTokenizerTopics('tk-erase-cache', 1);
  const email = `comeback-${Date.now().toString(36)}@example.com`;
  const first = piiExecution({ email, status: 'failed' });
  await publish(names.raw, first);
  const child = startTokenizerChild(tokenizerEnv(names, database, keys));
  try {
    await readTopic(names.events, first.length, { timeoutMs: 60_000 });
    // Happened before the erasure, sent only after it (a producer's spool): must stay unreadable.
    const spooled = piiExecution({ email, status: 'failed' });
    const erased = await runCli(['erase', '--email', email, '--as', 'dpo-1', '--reason', 'GDPR request 501'], {
      AUDITLINE_CLICKHOUSE_DATABASE: database,
      AUDITLINE_TOKENIZER_MASTER_KEY: keys.masterKey,
      AUDITLINE_TOKENIZER_TOKEN_KEY: keys.tokenKey,
    });
    assert.equal(erased.code, 0, erased.stderr);
    // The customer comes back: a new execution, published and happening after the erasure.
    const now = Date.now();
    const second = piiExecution({ email, status: 'failed' }).map((e, i) => ({ ...e, event_time: now + i }));
    await publish(names.raw, [...spooled, ...second]);
    const records = await readTopic(names.events, first.length + spooled.length + second.length, { timeoutMs: 60_000 });
    const events = await decodeAll(names.events, records);
    const started = (x: AuditEvent[]) => events.find((e) => e.event_id === x[0]!.event_id)!;
    assert.notEqual(piiToken(started(second)).k, piiToken(started(first)).k, 'the new execution is not encrypted under the erased key');
    const revealer = new SubjectKeyStore(client, database, wrapper, { cacheTtlMs: 0, rotationMs: DAY });
    const revealOf = (e: AuditEvent) =>
      reveal(
        { principal: 'u-18', role: 'legal', purpose: 'case 2024-501 evidence', executionId: e.execution_id, status: 'failed', fields: [{ name: 'execution.input', text: (unwrapPayload(e.payload).value as ExecutionStarted).input }] },
        { keys: revealer, log: log() },
      );
    const revealed = await revealOf(started(second));
    assert.equal(revealed.outcome, 'allowed', 'the returning customer\'s new values can be revealed');
    assert.equal(JSON.parse(revealed.fields[0]!.text).customer_email, email);
    assert.equal((await revealOf(started(first))).outcome, 'unrecoverable', 'what was encrypted before the erasure stays unreadable');
    assert.equal(piiToken(started(spooled)).k, 'erased', 'what happened before the erasure and was tokenized after it is sealed under no stored key');
    assert.equal((await revealOf(started(spooled))).outcome, 'unrecoverable');
  } finally {
    child.process.kill('SIGTERM');
  }
  assert.equal(await child.exited, 0, 'graceful stop');
});
