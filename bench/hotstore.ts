/**
 * `npm run bench -- hotstore`: the hot store service (docs/hotstore.md), three figures in one run.
 *
 * 1. Ingest: the same synthetic events (test/helpers/hotstore-fixtures.ts
 *    shapes) go (a) through the service's real path, a HotstoreService
 *    consuming a fresh topic (decode, map, insert, commit), and (b) as rows
 *    mapped beforehand by the same eventToRows, inserted by @clickhouse/client
 *    directly in batches of 10 000 events (one INSERT per table per batch,
 *    the writer's settings), once before and once after the service; the
 *    baseline is the mean of the two. The service rate runs from the moment its
 *    consumer joined the group to its last commit (its first batch
 *    included: six partitions' batches are in flight at once, so a window
 *    from the first finished batch would count the others' work without its
 *    time); `ratio` = service rows/s ÷ direct rows/s. The bench fails
 *    (exit 1) unless the service dead-lettered nothing and stored every
 *    event it was sent (its records counter counts dead letters too).
 * 2. Query latency: at least 10 million events bulk-loaded server-side
 *    (bench/lib/hotstore-load.ts) into a fresh database migrated by
 *    infra/clickhouse/migrate.ts, then p50/p95 of each query of
 *    consumers/hotstore/queries.ts, run one at a time.
 * 3. Freshness: executions published one every 50 ms to the topic the
 *    running service consumes (default batch and flush settings); p99 of
 *    the time from publish to the execution's rows being queryable.
 * The bench database and topics are dropped at the end. Last line: one JSON object.
 */
import { Registry } from 'prom-client';
import { createClickHouse } from '../core/clients/clickhouse.js';
import { createLogger } from '../core/logger.js';
import { migrate } from '../infra/clickhouse/migrate.js';
import { loadRetention } from '../infra/retention.js';
import { migrationVariables } from '../infra/setup.js';
import { decisionPath, eventToRows, executionInputs, failedExecutions, HOTSTORE_TABLES, HotstoreService, loadHotstoreConfig, type EventRows } from '../consumers/hotstore/index.js';
import { AuditEventCodec, RegistryClient, type AuditEvent } from '../schemas/index.js';
import { buildExecution, type StepSpec } from '../test/helpers/hotstore-fixtures.js';
import { createHotstoreTopics, dropHotstoreTopics, endpoints, hotstoreEnv, kafka } from '../test/helpers/hotstore-stack.js';
import { uniqueName } from '../test/helpers/names.js';
import { publish } from '../test/helpers/tokenizer-stack.js';
import { TOKENIZED_HEADER } from '../consumers/tokenizer/index.js';
import { bulkLoad } from './lib/hotstore-load.js';
import { deleteSubjects } from './lib/run.js';
import { DEFAULT_LAYOUT } from '../infra/kafka/topics.js';
import { metricTotal, quantile, requireNoDeadLetters, round, steadyState } from './stats.js';

const LOAD_EXECUTIONS = Number(process.env.BENCH_LOAD_EXECUTIONS ?? 1_600_000);
// Long enough (about 360 000 events) that the first fetch and JIT warm-up, inside the service window since it starts at the join, are a small part of it.
const INGEST_EXECUTIONS = Number(process.env.BENCH_INGEST_EXECUTIONS ?? 64_000);
const QUERY_RUNS = Number(process.env.BENCH_QUERY_RUNS ?? 100);
const FRESHNESS_SAMPLES = Number(process.env.BENCH_FRESHNESS_SAMPLES ?? 200);
const DIRECT_BATCH = 10_000;
const say = (m: string) => process.stderr.write(`${m}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const client = createClickHouse(endpoints.clickhouse, { requestTimeoutMs: 900_000 });
const database = uniqueName('bench_hs', '_');
// As many partitions as audit.events has once `setup` made it: the service handles up to six partitions' batches at once.
const names = await createHotstoreTopics('bench-hotstore', DEFAULT_LAYOUT.partitions);
const services: HotstoreService[] = [];

/** Synthetic executions of the ingest and freshness phases: 1-4 steps, decisions, 10% failed, a retried step now and then. */
function executions(count: number, tag: string): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (let i = 0; i < count; i++) {
    const failed = i % 10 === 3;
    const count = 1 + (i % 4);
    const steps: StepSpec[] = Array.from({ length: count }, (_, s) => ({
      name: `${tag}-step-${s + 1}`,
      status: failed && s === count - 1 ? 'failed' : 'success',
      attempts: i % 17 === 0 && s === 0 ? 2 : 1,
    }));
    out.push(
      ...buildExecution({
        workflowId: `WF-${String(i % 200).padStart(3, '0')}`,
        status: failed ? 'failed' : 'success',
        startedAgoMs: 60_000,
        steps,
        decisions: [{ step: 1, condition: 'amount > 10000', taken: 'manual-approval', reason: 'amount exceeds 10000' }],
      }),
    );
  }
  return out;
}

const rowCount = (rows: readonly EventRows[]) => rows.length * 2;

async function directInsert(events: readonly AuditEvent[]): Promise<{ rows: number; seconds: number }> {
  const mapped = events.map((e, i) => eventToRows(e, { topic: 'bench-direct', partition: 0, offset: String(i) }));
  const insertBatch = async (batch: readonly EventRows[]) => {
    for (const table of HOTSTORE_TABLES) {
      const values: object[] = table === 'events' ? batch.map((e) => e.event) : batch.filter((e) => e.detail.table === table).map((e) => e.detail.row);
      if (values.length === 0) continue;
      await client.insert({
        table: `${database}.${table}`,
        values,
        format: 'JSONEachRow',
        clickhouse_settings: { async_insert: 0, distributed_foreground_insert: 1, input_format_skip_unknown_fields: 0 },
      });
    }
  };
  await insertBatch(mapped.slice(0, 1_000)); // warm-up (connections, JIT), not timed; the same rows again are harmless
  const t0 = performance.now();
  for (let i = 0; i < mapped.length; i += DIRECT_BATCH) await insertBatch(mapped.slice(i, i + DIRECT_BATCH));
  return { rows: rowCount(mapped), seconds: (performance.now() - t0) / 1000 };
}

async function startService(env: Record<string, string> = {}): Promise<{ service: HotstoreService; registry: Registry }> {
  const config = loadHotstoreConfig({ ...process.env, ...hotstoreEnv(names, database, env) });
  const registry = new Registry();
  const service = new HotstoreService(config, { logger: createLogger('bench-hotstore', process.env.BENCH_DEBUG ? 'debug' : 'silent'), registry });
  services.push(service);
  await service.start(new AbortController().signal);
  return { service, registry };
}

/** Publishes first, then lets the service consume everything; the rate runs from its group join to its last commit. */
async function serviceIngest(events: readonly AuditEvent[]): Promise<{ rows: number; seconds: number; registry: Registry }> {
  // As the tokenizer writes them: the hot store refuses records without its header.
  await publish(names.topic, events, { [TOKENIZED_HEADER]: 'v1' });
  const { service, registry } = await startService();
  const run = await steadyState(() => metricTotal(registry, 'auditline_hotstore_records_total'), events.length, async () => (await service.readiness()).ready);
  // records_total counts dead-lettered records too: the rate holds only if every event was stored.
  await requireNoDeadLetters(registry, 'auditline_hotstore_records_total', 'the hot store');
  const rs = await client.query({ query: `SELECT uniqExact(event_id) AS n FROM ${database}.events WHERE source_topic = {topic:String}`, query_params: { topic: names.topic }, format: 'JSONEachRow' });
  const stored = Number((await rs.json<{ n: string }>())[0]!.n);
  if (stored !== events.length) throw new Error(`the hot store stored ${stored} of the ${events.length} events it was sent`);
  const batches = await metricTotal(registry, 'auditline_hotstore_batches_total');
  say(`  service: ${batches} batches, ${round(events.length / batches, 0)} events per batch on average`);
  return { rows: run.items * 2, seconds: run.seconds, registry };
}

async function timeQueries(): Promise<Record<string, { p50: number; p95: number; rows: number }>> {
  const sample = async (sql: string) => (await (await client.query({ query: sql, format: 'JSONEachRow' })).json<{ execution_id: string }>()).map((r) => r.execution_id);
  const failedIds = await sample(`SELECT execution_id FROM ${database}.execution_results WHERE status = 'failed' ORDER BY cityHash64(execution_id) LIMIT ${QUERY_RUNS}`);
  const anyIds = await sample(`SELECT execution_id FROM ${database}.executions ORDER BY cityHash64(execution_id, 7) LIMIT ${QUERY_RUNS}`);
  const ids = failedIds.map((id, i) => (i % 2 === 0 ? id : anyIds[i] ?? id));
  const patterns: Record<string, (i: number) => Promise<unknown[]>> = {
    failed: (i) => failedExecutions(client, database, { workflowId: `WF-${String(i % 200).padStart(3, '0')}`, sinceSeconds: 3_600, limit: 100 }),
    inputs: (i) => executionInputs(client, database, ids[i % ids.length]!),
    decisions: (i) => decisionPath(client, database, ids[i % ids.length]!),
  };
  const out: Record<string, { p50: number; p95: number; rows: number }> = {};
  for (const [name, run] of Object.entries(patterns)) {
    for (let i = 0; i < 5; i++) await run(i + 1_000); // warm-up
    const ms: number[] = [];
    let rows = 0;
    for (let i = 0; i < QUERY_RUNS; i++) {
      const t0 = performance.now();
      rows += (await run(i)).length;
      ms.push(performance.now() - t0);
    }
    out[name] = { p50: round(quantile(ms, 0.5)), p95: round(quantile(ms, 0.95)), rows: round(rows / QUERY_RUNS, 1) };
    say(`  ${name}: p50 ${out[name].p50} ms, p95 ${out[name].p95} ms (${out[name].rows} rows per query on average)`);
  }
  return out;
}

/**
 * Publishes one execution every 50 ms through a connected producer; one poller looks for them in `events` (written last
 * by the service). The latency is taken when a poll begins: the poll reads the parts that exist once it is planned, a
 * few milliseconds later, so a row it returns was queryable by then; taken at the poll's end it would include the poll's
 * own duration (hundreds of milliseconds on a saturated machine), which is not the service's latency.
 */
async function freshness(): Promise<number[]> {
  const codec = new AuditEventCodec(new RegistryClient(endpoints.registry), names.topic);
  await codec.init();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  const pending = new Map<string, number>();
  const latencies: number[] = [];
  let publishing = true;
  const poller = (async () => {
    while (publishing || pending.size > 0) {
      if (pending.size > 0) {
        const polledAt = Date.now();
        const rs = await client.query({
          query: `SELECT DISTINCT execution_id FROM ${database}.events WHERE execution_id IN {ids:Array(String)}`,
          query_params: { ids: [...pending.keys()] },
          format: 'JSONEachRow',
        });
        for (const { execution_id } of await rs.json<{ execution_id: string }>()) {
          latencies.push(polledAt - pending.get(execution_id)!);
          pending.delete(execution_id);
        }
      }
      await sleep(20);
    }
  })();
  try {
    const all = executions(FRESHNESS_SAMPLES, 'fresh');
    const byExecution = new Map<string, AuditEvent[]>();
    for (const e of all) byExecution.set(e.execution_id, [...(byExecution.get(e.execution_id) ?? []), e]);
    for (const [id, events] of byExecution) {
      pending.set(id, Date.now());
      await producer.send({ topic: names.topic, acks: -1, messages: events.map((e) => ({ key: e.execution_id, value: codec.encode(e), headers: { [TOKENIZED_HEADER]: 'v1' } })) });
      await sleep(50);
    }
  } finally {
    publishing = false;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([poller, new Promise((resolve) => (timer = setTimeout(resolve, 30_000)))]);
  clearTimeout(timer);
  await producer.disconnect();
  if (pending.size > 0) throw new Error(`${pending.size} executions were not queryable 30 s after the last publish`);
  return latencies;
}

/** Waits until no merge runs in the bench database (or `timeoutMs` passed); the active part count afterwards. */
async function settleMerges(timeoutMs: number): Promise<{ seconds: number; parts: number }> {
  const t0 = performance.now();
  const count = async (sql: string) => Number((await (await client.query({ query: sql, query_params: { db: database }, format: 'JSONEachRow' })).json<{ n: string }>())[0]!.n);
  while (performance.now() - t0 < timeoutMs && (await count('SELECT count() AS n FROM system.merges WHERE database = {db:String}')) > 0) await sleep(1_000);
  return { seconds: (performance.now() - t0) / 1000, parts: await count('SELECT count() AS n FROM system.parts WHERE database = {db:String} AND active') };
}

let result: Record<string, unknown>;
try {
  await migrate(client, { database, variables: migrationVariables(loadRetention()) });
  say(`hotstore bench: database ${database}, topic ${names.topic}`);

  say(`bulk load: ${LOAD_EXECUTIONS} executions over 85 days (server-side INSERT … SELECT)`);
  const load = await bulkLoad(client, database, { executions: LOAD_EXECUTIONS, spanDays: 85, workflows: 200 }, say);
  say(`loaded ${load.events} events in ${round(load.seconds, 1)} s`);
  // A live hot store is not merging ten million freshly loaded rows: measure after the load's merges settled.
  const settled = await settleMerges(600_000);
  say(`background merges of the load settled after ${round(settled.seconds, 1)} s (${settled.parts} active parts)`);

  const ingestEvents = executions(INGEST_EXECUTIONS, 'ingest');
  say(`ingest: ${ingestEvents.length} events (${ingestEvents.length * 2} rows), direct inserts, the service, direct inserts again`);
  const direct = await directInsert(executions(INGEST_EXECUTIONS, 'direct'));
  say(`  direct @clickhouse/client, ${DIRECT_BATCH}-event batches: ${round(direct.rows / direct.seconds, 0)} rows/s`);
  const svc = await serviceIngest(ingestEvents);
  say(`  service (steady state): ${round(svc.rows / svc.seconds, 0)} rows/s`);
  const directAfter = await directInsert(executions(INGEST_EXECUTIONS, 'direct-after'));
  say(`  direct again, after the service: ${round(directAfter.rows / directAfter.seconds, 0)} rows/s`);
  // The server's speed drifts within a run (parts of the same day's partition accumulate, the machine is shared):
  // the baseline is the mean of a direct run before and one after the service.
  const baselineRowsPerS = (direct.rows / direct.seconds + directAfter.rows / directAfter.seconds) / 2;

  say(`queries over ${load.events}+ events, ${QUERY_RUNS} runs each:`);
  const queries = await timeQueries();

  say(`freshness: ${FRESHNESS_SAMPLES} executions, one every 50 ms, through the running service`);
  const fresh = await freshness();
  say(`  p50 ${quantile(fresh, 0.5)} ms, p99 ${quantile(fresh, 0.99)} ms`);

  result = {
    bench: 'hotstore',
    loaded_events: load.events,
    load_seconds: round(load.seconds, 1),
    ingest_events: ingestEvents.length,
    rows_per_s: round(svc.rows / svc.seconds, 0),
    baseline_rows_per_s: round(baselineRowsPerS, 0),
    ratio: round(svc.rows / svc.seconds / baselineRowsPerS, 3),
    failed_p50_ms: queries.failed!.p50,
    failed_p95_ms: queries.failed!.p95,
    inputs_p50_ms: queries.inputs!.p50,
    inputs_p95_ms: queries.inputs!.p95,
    decisions_p50_ms: queries.decisions!.p50,
    decisions_p95_ms: queries.decisions!.p95,
    freshness_p50_ms: quantile(fresh, 0.5),
    freshness_p99_ms: quantile(fresh, 0.99),
  };
} finally {
  for (const s of services) await s.stop().catch(() => undefined);
  await dropHotstoreTopics(names, [names.group]);
  await deleteSubjects(endpoints.registry, [names.topic]).catch((err: unknown) => say(`deleting the registry subject failed: ${String(err)}`));
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}`, clickhouse_settings: { max_execution_time: 0 } }).catch((err: unknown) => say(`dropping ${database} failed: ${String(err)}`));
  await client.close();
}
console.log(JSON.stringify(result));
