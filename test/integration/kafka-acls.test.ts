import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import kafkajs from 'kafkajs';
import { Registry } from 'prom-client';
import { createKafka } from '../../core/clients/kafka.js';
import { isAuditlineError } from '../../core/errors.js';
import { createLogger } from '../../core/logger.js';
import { DLQ_HEADERS, DlqPublisher } from '../../core/service/index.js';
import { loadTokenizerConfig, TokenizerService } from '../../consumers/tokenizer/index.js';
import { applyAcls, auditAcls, DLQ_CLI_GROUP_PREFIX, extraTopicAcls, parsePrincipals, type AclNames } from '../../infra/kafka/acls.js';
import { AuditEventCodec, RegistryClient } from '../../schemas/index.js';
import { consumeCount } from '../helpers/kafka.js';
import { metricTotal } from '../../bench/stats.js';
import { uniqueName } from '../helpers/names.js';
import { startSecuredKafka, type SecuredKafka } from '../helpers/secured-kafka.js';
import { registerTestSubjects } from '../helpers/subjects.js';
import { piiExecution, testKeys } from '../helpers/tokenizer-fixtures.js';
import { clickhouse, createTokenizerDatabase, endpoints, kafka as sharedKafka, runCli, tokenizerEnv } from '../helpers/tokenizer-stack.js';

const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

const ROLES = ['producer', 'tokenizer', 'hotstore', 'archiver', 'alerts', 'operator'] as const;
const base = uniqueName('it-acl');
const names: AclNames = {
  topics: { raw: `${base}.raw`, events: `${base}.events`, dlq: `${base}.dlq`, alertSignals: `${base}.signals`, alertOutbox: `${base}.outbox` },
  groups: { tokenizer: `${base}-tokenizer`, hotstore: `${base}-hotstore`, archiver: `${base}-archiver`, alerts: `${base}-alerts` },
  transactionalIdPrefix: `${base}-tokenizer`,
};
// The principals as a deployment names them in AUDITLINE_KAFKA_ACL_PRINCIPALS; `intruder` is granted nothing (until a
// test grants it what the spec does not contain), `stranger` nothing at all.
const principals = parsePrincipals(ROLES.map((r) => `${r}=User:${r}`).join(','));
const rules = auditAcls(principals, names);

let broker: SecuredKafka;
const client = clickhouse();
let database: string;

before(async () => {
  broker = await startSecuredKafka([...ROLES, 'intruder', 'stranger']);
  const admin = createKafka(broker.as('admin')).admin();
  await admin.connect();
  try {
    await admin.createTopics({ waitForLeaders: true, topics: Object.values(names.topics).map((topic) => ({ topic, numPartitions: 1, replicationFactor: 1 })) });
    await applyAcls(admin, rules);
    await applyAcls(admin, rules); // idempotent: the second run changes nothing and does not fail
  } finally {
    await admin.disconnect();
  }
  await registerTestSubjects([names.topics.raw, names.topics.events]);
  database = await createTokenizerDatabase(client);
});

after(async () => {
  await broker?.stop();
  if (database) await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

const kafkaAs = (user: string) => createKafka(broker.as(user), undefined, { retry: { retries: 1, initialRetryTime: 100 } });

/** Sends one record as `user`; resolves with the Kafka error type of a refusal, or 'ok'. */
async function sendAs(user: string, topic: string, value: Buffer): Promise<string> {
  const producer = kafkaAs(user).producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  try {
    await producer.connect();
    await producer.send({ topic, acks: -1, messages: [{ key: 'k', value }] });
    return 'ok';
  } catch (err) {
    return errorType(err);
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

/**
 * Reads `topic` as `user` in `group`: 'ok' once a record arrived, else the Kafka error type of the refusal (from
 * subscribe's metadata request, or from the group join, which kafkajs reports as a consumer crash).
 */
async function subscribeAs(user: string, topic: string, group: string): Promise<string> {
  const consumer = kafkaAs(user).consumer({ groupId: group, retry: { retries: 0, restartOnFailure: async () => false } });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    return await new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('other: no record and no refusal within 15 s'), 15_000);
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        clearTimeout(timer);
        resolve(errorType(payload.error));
      });
      void consumer
        .run({
          eachMessage: async () => {
            clearTimeout(timer);
            resolve('ok');
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          resolve(errorType(err));
        });
    });
  } catch (err) {
    return errorType(err);
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

function errorType(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 6; depth++) {
    const type = (e as { type?: unknown }).type;
    if (typeof type === 'string' && type.endsWith('AUTHORIZATION_FAILED')) return type;
    e = (e as { cause?: unknown; originalError?: unknown }).originalError ?? (e as { cause?: unknown }).cause ?? (e as { errors?: unknown[] }).errors?.[0];
  }
  return `other: ${err instanceof Error ? err.message : String(err)}`;
}

test('ACLs on a broker without an authorizer: CONFIG_INVALID, nothing would be enforced', async () => {
  const admin = sharedKafka.admin();
  await admin.connect();
  try {
    await assert.rejects(applyAcls(admin, rules), (e) => isAuditlineError(e, 'CONFIG_INVALID') && /no authorizer/.test(e.message));
  } finally {
    await admin.disconnect();
  }
});

test('with the ACLs applied, the real tokenizer runs as its principal, producers write only audit.raw, only the tokenizer reads it, only operators read the DLQ', { timeout: 180_000 }, async () => {
  // Producers: audit.raw yes, audit.events no (downstream trusts audit.events to be tokenized). Strangers: nothing.
  // A principal without any grant is refused before the topic: its idempotent producer gets no producer id.
  assert.match(await sendAs('intruder', names.topics.raw, Buffer.from('x')), /^(CLUSTER|TOPIC)_AUTHORIZATION_FAILED$/);
  assert.equal(await sendAs('producer', names.topics.events, Buffer.from('cleartext')), 'TOPIC_AUTHORIZATION_FAILED');
  assert.equal(await sendAs('hotstore', names.topics.events, Buffer.from('cleartext')), 'TOPIC_AUTHORIZATION_FAILED');

  const execution = piiExecution({ status: 'failed' });
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), names.topics.raw);
  await codec.init();
  const producer = kafkaAs('producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  await producer.send({ topic: names.topics.raw, acks: -1, messages: [...execution.map((e) => ({ key: e.execution_id, value: codec.encode(e) })), { key: 'poison', value: Buffer.from('not avro') }] });
  await producer.disconnect();

  // audit.raw may hold cleartext: the hot store's principal cannot read it, nor join the tokenizer's group (which
  // would let it move the tokenizer's offsets) even on a topic it may read.
  assert.equal(await subscribeAs('hotstore', names.topics.raw, names.groups.hotstore), 'TOPIC_AUTHORIZATION_FAILED');
  // kafkajs reports the refused FindCoordinator (GROUP_AUTHORIZATION_FAILED) as "Failed to find group coordinator"
  // (its broker pool drops the error type); the same principal in its own group reads the topic below.
  assert.match(await subscribeAs('hotstore', names.topics.events, names.groups.tokenizer), /GROUP_AUTHORIZATION_FAILED|Failed to find group coordinator/);

  // The tokenizer service itself, on its principal's grants only: consumer group, transactions, offsets in the transaction, DLQ.
  const env = {
    ...tokenizerEnv({ raw: names.topics.raw, events: names.topics.events, dlq: names.topics.dlq, group: names.groups.tokenizer }, database, testKeys()),
    AUDITLINE_KAFKA_BROKERS: broker.brokers.join(','),
    AUDITLINE_KAFKA_SASL_MECHANISM: 'plain',
    AUDITLINE_KAFKA_SASL_USERNAME: 'tokenizer',
    AUDITLINE_KAFKA_SASL_PASSWORD: 'tokenizer-secret',
    AUDITLINE_SCHEMA_REGISTRY_URL: endpoints.registry.url,
    AUDITLINE_CLICKHOUSE_URL: endpoints.clickhouse.url,
    AUDITLINE_S3_ENDPOINT: endpoints.s3.endpoint ?? '',
    AUDITLINE_TOKENIZER_TRANSACTIONAL_ID_PREFIX: names.transactionalIdPrefix,
  };
  const registry = new Registry();
  const service = new TokenizerService(loadTokenizerConfig({ ...process.env, ...env }), { logger: createLogger('acl-tokenizer', 'silent'), registry });
  await service.start(new AbortController().signal);
  try {
    const deadline = Date.now() + 60_000;
    while ((await metricTotal(registry, 'auditline_tokenizer_records_total')) < execution.length + 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.equal(await metricTotal(registry, 'auditline_tokenizer_records_total'), execution.length + 1, 'every raw record handled (the events and the poison record)');
  } finally {
    await service.stop();
  }

  // Downstream reads the tokenized events with its own group; the poison record is in the DLQ, which only operators read.
  const hotstore = kafkaAs('hotstore').consumer({ groupId: names.groups.hotstore });
  await hotstore.connect();
  await hotstore.subscribe({ topics: [names.topics.events], fromBeginning: true });
  const tokenized = await consumeCount(hotstore, execution.length, 30_000);
  await hotstore.disconnect();
  assert.equal(tokenized.length, execution.length);
  for (const { message } of tokenized) assert.equal(String(message.headers?.['auditline-tokenized']), 'v1');
  assert.equal(await subscribeAs('hotstore', names.topics.dlq, names.groups.hotstore), 'TOPIC_AUTHORIZATION_FAILED');
  // Operators read it with `auditline dlq list`, under the operator's grants alone (a group of the dlq commands'
  // prefix, deleted at the end).
  const listed = await runCli(['dlq', 'list', '--topic', names.topics.dlq, '--json'], operatorEnv());
  assert.equal(listed.code, 0, listed.stderr);
  const letters = (JSON.parse(listed.stdout) as { dead_letters: { service: string; source: string }[] }).dead_letters;
  assert.deepEqual(
    letters.map((l) => [l.service, l.source.replace(/:\d+:\d+$/, '')]),
    [['tokenizer', names.topics.raw]],
    'the poison record, dead-lettered by the tokenizer under its own grants',
  );
  const admin = createKafka(broker.as('admin')).admin();
  await admin.connect();
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId);
  await admin.disconnect();
  assert.ok(!groups.some((g) => g.startsWith(DLQ_CLI_GROUP_PREFIX)), `the dlq command deleted its group: ${groups.join(', ')}`);
});

test('a grant on an audit topic that the spec does not contain is reported', async () => {
  const admin = createKafka(broker.as('admin')).admin();
  await admin.connect();
  try {
    assert.deepEqual(await extraTopicAcls(admin, rules, names), [], 'nothing but the spec at first');
    await admin.createAcls({
      acl: [
        { principal: 'User:intruder', host: '*', operation: AclOperationTypes.READ, permissionType: AclPermissionTypes.ALLOW, resourceType: AclResourceTypes.TOPIC, resourceName: names.topics.raw, resourcePatternType: ResourcePatternTypes.LITERAL },
        { principal: 'User:intruder', host: '*', operation: AclOperationTypes.ALL, permissionType: AclPermissionTypes.ALLOW, resourceType: AclResourceTypes.TOPIC, resourceName: base, resourcePatternType: ResourcePatternTypes.PREFIXED },
      ],
    });
    const extra = await extraTopicAcls(admin, rules, names);
    assert.ok(extra.some((l) => l.startsWith(`${names.topics.raw}: READ allowed to User:intruder`)), extra.join('\n'));
    assert.ok(extra.some((l) => l.startsWith(`${names.topics.dlq}: ALL allowed to User:intruder`) && l.includes(`${base}*`)), 'a prefixed grant reaches every topic under it');
  } finally {
    await admin.disconnect();
  }
});

/** The `auditline` CLI's settings as the operator on the secured broker, with the services' topics named as deployed. */
function operatorEnv(): Record<string, string> {
  return {
    AUDITLINE_KAFKA_BROKERS: broker.brokers.join(','),
    AUDITLINE_KAFKA_SASL_MECHANISM: 'plain',
    AUDITLINE_KAFKA_SASL_USERNAME: 'operator',
    AUDITLINE_KAFKA_SASL_PASSWORD: 'operator-secret',
    AUDITLINE_SCHEMA_REGISTRY_URL: endpoints.registry.url,
    AUDITLINE_CLICKHOUSE_URL: endpoints.clickhouse.url,
    AUDITLINE_CLICKHOUSE_DATABASE: database,
    AUDITLINE_TOKENIZER_TOPIC: names.topics.raw,
    AUDITLINE_HOTSTORE_TOPIC: names.topics.events,
    AUDITLINE_ARCHIVER_TOPIC: names.topics.events,
    AUDITLINE_ALERTS_TOPIC: names.topics.events,
    AUDITLINE_ALERTS_SIGNALS_TOPIC: names.topics.alertSignals,
    AUDITLINE_ALERTS_OUTBOX_TOPIC: names.topics.alertOutbox,
  };
}

async function highWatermark(topic: string): Promise<number> {
  const admin = createKafka(broker.as('admin')).admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).reduce((n, o) => n + Number(o.high), 0);
  } finally {
    await admin.disconnect();
  }
}

test('a dead letter forged by a principal that may write the DLQ is not redriven into audit.events under the operator\'s grant', { timeout: 120_000 }, async () => {
  // The hot store's principal may write audit.dlq but not audit.events. It writes a "tokenizer" dead letter whose
  // source topic is audit.events, with cleartext and the tokenizer's header: a routine tokenizer redrive must not send it there.
  const dlqStart = await highWatermark(names.topics.dlq);
  const forger = kafkaAs('hotstore').producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await forger.connect();
  await forger.send({
    topic: names.topics.dlq,
    acks: -1,
    messages: [
      {
        key: 'exec-forged',
        value: Buffer.from('{"customer_email":"victim@example.com"}'),
        headers: {
          [DLQ_HEADERS.service]: 'tokenizer',
          [DLQ_HEADERS.errorCode]: 'TOKENIZE_FAILED',
          [DLQ_HEADERS.sourceTopic]: names.topics.events,
          [DLQ_HEADERS.sourcePartition]: '0',
          [DLQ_HEADERS.sourceOffset]: '1',
          [DLQ_HEADERS.reason]: 'forged',
          [DLQ_HEADERS.time]: new Date().toISOString(),
          'auditline-tokenized': 'v1',
        },
      },
    ],
  });
  await forger.disconnect();
  // And a genuine one of the tokenizer, which the same redrive sends, in its transaction, under the operator's grants.
  const tokenizer = new DlqPublisher(kafkaAs('tokenizer'), { topic: names.topics.dlq, service: 'tokenizer' });
  await tokenizer.publish([{ record: { topic: names.topics.raw, partition: 0, offset: '7', key: Buffer.from('exec-real'), value: Buffer.from('not avro'), headers: {}, timestamp: String(Date.now()) }, code: 'TOKENIZE_FAILED', reason: 'genuine' }]);
  await tokenizer.disconnect();
  const eventsBefore = await highWatermark(names.topics.events);
  const rawBefore = await highWatermark(names.topics.raw);
  const forged = `0:${dlqStart}`;
  const genuine = `0:${dlqStart + 1}`;
  const r = await runCli(['dlq', 'redrive', '--topic', names.topics.dlq, '--service', 'tokenizer', '--from', forged, '--to', genuine, '--as', 'ops-olga', '--reason', 'INC-1 tokenizer fixed', '--json'], operatorEnv());
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout) as { sent: { dlq: string }[]; skipped: { dlq: string; cause: string }[] };
  assert.deepEqual(result.sent.map((l) => l.dlq), [genuine]);
  assert.deepEqual(result.skipped.map((s) => [s.dlq, s.cause]), [[forged, 'source topic is not an input of tokenizer']]);
  assert.match(r.stderr, /1 dead letter\(s\) sent to \S+\.raw; 1 skipped \(1 source topic is not an input of tokenizer\)/);
  assert.equal(await highWatermark(names.topics.events), eventsBefore, 'nothing reached audit.events');
  assert.ok((await highWatermark(names.topics.raw)) > rawBefore, 'the genuine dead letter went back to audit.raw');
});

test('a topic the caller may not describe is reported as not authorized, not as missing', { timeout: 120_000 }, async () => {
  // Kafka leaves a topic the principal may not describe out of its topic list: the DLQ topic for a stranger, and for
  // the operator a configured input of a service that the operator's grants do not cover.
  const listed = await runCli(['dlq', 'list', '--topic', names.topics.dlq], { ...operatorEnv(), AUDITLINE_KAFKA_SASL_USERNAME: 'stranger', AUDITLINE_KAFKA_SASL_PASSWORD: 'stranger-secret' });
  assert.equal(listed.code, 1, listed.stderr);
  assert.match(listed.stderr, new RegExp(`the DLQ topic ${names.topics.dlq.replace(/\./g, '\\.')}: not authorized`));
  assert.doesNotMatch(listed.stderr, /does not exist|run `npx auditline setup`/);

  const ungranted = `${base}.ungranted`;
  const missing = `${base}.missing`;
  const admin = createKafka(broker.as('admin')).admin();
  await admin.connect();
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic: ungranted, numPartitions: 1, replicationFactor: 1 }] });
  // Kafka tells a topic missing only to a principal that may describe it: the operator's grants as for any input, no topic.
  await applyAcls(admin, auditAcls(principals, { ...names, topics: { ...names.topics, alertOutbox: missing } }).filter((r) => r.role === 'operator' && r.name === missing));
  await admin.disconnect();
  const dlqStart = await highWatermark(names.topics.dlq);
  const alerts = new DlqPublisher(kafkaAs('alerts'), { topic: names.topics.dlq, service: 'alerts' });
  const record = (topic: string) => ({ record: { topic, partition: 0, offset: '3', key: Buffer.from('chan'), value: Buffer.from('{}'), headers: {}, timestamp: String(Date.now()) }, code: 'ALERT_DELIVERY_FAILED' as const, reason: 'webhook down' });
  await alerts.publish([record(ungranted), record(missing)]);
  await alerts.disconnect();
  const env = { ...operatorEnv(), AUDITLINE_ALERTS_SIGNALS_TOPIC: ungranted, AUDITLINE_ALERTS_OUTBOX_TOPIC: missing };
  const r = await runCli(['dlq', 'redrive', '--topic', names.topics.dlq, '--service', 'alerts', '--from', `0:${dlqStart}`, '--to', `0:${dlqStart + 1}`, '--as', 'ops-olga', '--reason', 'INC-2 webhook fixed'], env);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`${ungranted.replace(/\./g, '\\.')}: not authorized`));
  assert.match(r.stderr, new RegExp(`${missing.replace(/\./g, '\\.')}: does not exist`));
  assert.match(r.stderr, /nothing was sent/);
});
