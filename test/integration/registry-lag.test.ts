import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { HotstoreService, loadHotstoreConfig } from '../../consumers/hotstore/index.js';
import { buildExecution } from '../helpers/hotstore-fixtures.js';
import { clickhouse, committedToEnd, createHotstoreDatabase, createHotstoreTopics, dropHotstoreTopics, endpoints, hotstoreEnv, kafka, publish, storedEvents, waitFor } from '../helpers/hotstore-stack.js';

/**
 * A misbehaving registry for this test only: an HTTP stand-in in front of
 * the real registry that forwards every request to it, except that while
 * `lagging` it answers every lookup of a schema by id with the registry's own
 * "not found" (404, error code 40403), as a Confluent follower that has not
 * yet seen a just-registered id does, or an Apicurio kafkasql node still
 * replaying its journal after a restart.
 */
class LaggingRegistry {
  lagging = true;
  misses = 0;
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => void this.answer(req.method ?? 'GET', req.url ?? '/', Buffer.concat(chunks), req.headers['content-type'], res));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => (this.server ? this.server.close(resolve) : resolve(undefined)));
  }

  private async answer(method: string, path: string, body: Buffer, contentType: string | undefined, res: import('node:http').ServerResponse): Promise<void> {
    if (this.lagging && method === 'GET' && /\/schemas\/ids\/\d+$/.test(path)) {
      this.misses += 1;
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error_code: 40403, message: 'Schema not found' }));
      return;
    }
    const upstream = await fetch(`${endpoints.registry.url}${path}`, { method, ...(body.length > 0 ? { body: body.toString() } : {}), headers: contentType ? { 'Content-Type': contentType } : {} });
    res.writeHead(upstream.status, { 'Content-Type': upstream.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await upstream.arrayBuffer()));
  }
}

const client = clickhouse();
const registryStandIn = new LaggingRegistry();
let database: string;
let names: { topic: string; dlq: string; group: string };
let service: HotstoreService | undefined;

before(async () => {
  database = await createHotstoreDatabase(client);
  names = await createHotstoreTopics('reg-lag', 1);
});

after(async () => {
  await service?.stop().catch(() => undefined);
  await registryStandIn.close();
  await dropHotstoreTopics(names, [names.group]);
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
});

async function dlqRecords(): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(names.dlq)).reduce((n, p) => n + Number(p.high), 0);
  } finally {
    await admin.disconnect();
  }
}

test('a registry that does not know the schema ids yet holds the hot store back (retried, nothing dead-lettered); once it knows them every event is stored', { timeout: 60_000 }, async () => {
  const url = await registryStandIn.start();
  const registry = new Registry();
  const config = loadHotstoreConfig({
    ...process.env,
    ...hotstoreEnv(names, database, {
      AUDITLINE_SCHEMA_REGISTRY_URL: url,
      AUDITLINE_HOTSTORE_FLUSH_MS: '100',
      AUDITLINE_HOTSTORE_RETRY_INITIAL_MS: '100',
      AUDITLINE_HOTSTORE_RETRY_MAX_MS: '500',
      AUDITLINE_HOTSTORE_UNKNOWN_SCHEMA_RETRY_MS: '30000',
    }),
  });
  service = new HotstoreService(config, { logger: createLogger('registry-lag-test', 'silent'), registry });
  // The subject exists (createHotstoreTopics registered it through the real registry): the start-up check passes.
  await service.start(new AbortController().signal);

  const events = [...buildExecution({ workflowId: 'WF-LAG', status: 'failed', startedAgoMs: 10_000, steps: [{ name: 'a', status: 'failed' }] }), ...buildExecution({ workflowId: 'WF-LAG', status: 'success', startedAgoMs: 5_000 })];
  await publish(names.topic, events);

  await waitFor('the hot store asked the lagging registry several times', async () => registryStandIn.misses >= 4, 20_000);
  assert.equal(await dlqRecords(), 0, 'nothing dead-lettered while the registry does not know the ids yet');
  assert.equal(await storedEvents(client, database), 0);
  const retries = (await registry.getSingleMetric('auditline_hotstore_retries_total')!.get()).values.find((v) => v.labels.stage === 'handle')?.value ?? 0;
  assert.ok(retries >= 3, `the batch was retried (${retries})`);

  registryStandIn.lagging = false;
  await waitFor('every event stored once the registry knows the ids', async () => (await storedEvents(client, database)) === events.length, 20_000);
  await waitFor('offsets committed to the end', () => committedToEnd(names.group, names.topic));
  assert.equal(await dlqRecords(), 0, 'no record was dead-lettered');
});
