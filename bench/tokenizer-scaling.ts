/**
 * `npm run bench -- tokenizer-scaling`: the tokenizer scaled out by
 * instances, against one instance, same topic, same run.
 *
 * The tokenizer scales by adding instances (processes in one consumer group
 * sharing the partitions of `audit.raw`). EXECUTIONS executions of the
 * tokenizer fixtures (4 events each) are published once to a raw topic of
 * PARTITIONS partitions; then `auditline run tokenizer` runs as child
 * processes in a fresh group (and to a fresh output topic) each round:
 * one instance (the baseline), INSTANCES instances, one, INSTANCES again.
 * A round's rate is taken from the group's committed offsets from the
 * later of 10 % of the topic and the moment the group is stable with every
 * instance a member, to 90 % (start-up, the joins' rebalance and the tail
 * left out), polled every 100 ms; the whole machine's busy share in that window comes from
 * /proc/stat (the broker, ClickHouse and the registry share the cores).
 * The figures are the mean of the two rounds of each kind.
 *
 * On a machine whose cores the single instance and the services already
 * fill, more instances add nothing; the ratio says what adding instances
 * buys on this machine, `cores` how many it has. Fails (exit 1) if any
 * record was dead-lettered. Settings: BENCH_EXECUTIONS (10000),
 * BENCH_INSTANCES (2), BENCH_PARTITIONS (6). Last line: one JSON object.
 */
import { availableParallelism } from 'node:os';
import { createClickHouse } from '../core/clients/clickhouse.js';
import { piiExecution, testKeys } from '../test/helpers/tokenizer-fixtures.js';
import { createTokenizerDatabase, createTokenizerTopics, dropTokenizerTopics, endpoints, kafka, publish, startTokenizerChild, tokenizerEnv } from '../test/helpers/tokenizer-stack.js';
import { Cleanup, deleteSubjects, withDeadline } from './lib/run.js';
import { machineCpu, round, type MachineCpu } from './stats.js';
import type { AuditEvent } from '../schemas/index.js';

const EXECUTIONS = Number(process.env.BENCH_EXECUTIONS ?? 10_000);
const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 2);
const PARTITIONS = Number(process.env.BENCH_PARTITIONS ?? 6);
const ROUND_DEADLINE_MS = 600_000;
const say = (m: string) => process.stderr.write(`${m}\n`);
for (const [name, v, min] of [['BENCH_EXECUTIONS', EXECUTIONS, 100], ['BENCH_INSTANCES', INSTANCES, 2], ['BENCH_PARTITIONS', PARTITIONS, 1]] as const) {
  if (!Number.isSafeInteger(v) || v < min) {
    say(`${name} must be a whole number of at least ${min}`);
    process.exit(2);
  }
}

interface Round {
  instances: number;
  eventsPerS: number;
  machineBusyPct: number | undefined;
}

const cleanup = new Cleanup();
const client = createClickHouse(endpoints.clickhouse);
cleanup.add('closing ClickHouse', () => client.close());
const admin = kafka.admin();
await admin.connect();
cleanup.add('disconnecting the admin', () => admin.disconnect());

/** Events the group committed on the raw topic, through the bench's one admin (polled every 100 ms in a measured window). */
async function committed(group: string, topic: string): Promise<number> {
  const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
  return (fetched?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
}

let result: Record<string, unknown>;
try {
  const database = await createTokenizerDatabase(client);
  cleanup.add('dropping the database', () => client.command({ query: `DROP DATABASE IF EXISTS ${database}` }));
  const names = await createTokenizerTopics('bench-tk-scale', PARTITIONS);
  const groups: string[] = [];
  const outputs: string[] = [];
  cleanup.add('deleting the registry subjects', () => deleteSubjects(endpoints.registry, [names.raw, names.events, ...outputs]));
  cleanup.add('deleting the topics and groups', async () => {
    await admin.deleteTopics({ topics: outputs }).catch(() => undefined);
    await dropTokenizerTopics(names, groups);
  });
  const keys = testKeys();
  const events: AuditEvent[] = [];
  for (let i = 0; i < EXECUTIONS; i++) events.push(...piiExecution({ status: i % 3 === 0 ? 'failed' : 'success', email: `customer-${i % 2_000}@example.com` }));
  say(`tokenizer-scaling: ${events.length} events on ${PARTITIONS} partitions of ${names.raw}; rounds of 1 and ${INSTANCES} instances on ${availableParallelism()} cores`);
  await publish(names.raw, events);

  const round1 = async (instances: number, n: number): Promise<Round> => {
    const group = `${names.group}-r${n}`;
    const out = `${names.events}-r${n}`;
    groups.push(group);
    outputs.push(out);
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: out, numPartitions: PARTITIONS, replicationFactor: 1 }] });
    const env = tokenizerEnv({ ...names, events: out, group }, database, keys, { AUDITLINE_TOKENIZER_LOG_LEVEL: 'warn' });
    const children = Array.from({ length: instances }, () => startTokenizerChild(env));
    try {
      return await withDeadline(`round ${n} (${instances} instance(s))`, ROUND_DEADLINE_MS, (async () => {
        let from: { n: number; t: number; cpu: MachineCpu | undefined } | undefined;
        let stable = false;
        for (;;) {
          // The window opens once every instance is a member of the stable group: two children started together do
          // not join at once, and the first takes every partition until the second's rebalance.
          if (!stable) {
            const [described] = (await admin.describeGroups([group])).groups;
            stable = described?.state === 'Stable' && described.members.length === instances;
          }
          const done = await committed(group, names.raw);
          const t = performance.now();
          if (!from && stable && done >= events.length * 0.1) from = { n: done, t, cpu: machineCpu() };
          if (!from && done >= events.length * 0.9) throw new Error(`the group did not hold ${instances} member(s) before 90 % of the topic was committed: no window to measure`);
          if (from && done >= events.length * 0.9) {
            const cpu = machineCpu();
            const busy = from.cpu && cpu ? (100 * (cpu.busyUs - from.cpu.busyUs)) / (cpu.totalUs - from.cpu.totalUs) : undefined;
            return { instances, eventsPerS: (done - from.n) / ((t - from.t) / 1000), machineBusyPct: busy };
          }
          const dead = children.find((c) => c.process.exitCode !== null || c.process.signalCode !== null);
          if (dead) throw new Error(`a tokenizer instance exited (${dead.process.exitCode ?? dead.process.signalCode}): ${dead.output().slice(-2_000)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      })());
    } finally {
      for (const c of children) if (c.process.exitCode === null && c.process.signalCode === null) c.process.kill('SIGTERM');
      await Promise.all(children.map((c) => c.exited));
    }
  };

  const rounds: Round[] = [];
  for (const [n, instances] of [1, INSTANCES, 1, INSTANCES].entries()) {
    const r = await round1(instances, n);
    rounds.push(r);
    say(`round ${n + 1}: ${instances} instance(s): ${round(r.eventsPerS, 0)} events/s, machine ${r.machineBusyPct === undefined ? '?' : round(r.machineBusyPct, 1)} % busy`);
  }
  const dlq = await admin.fetchTopicOffsets(names.dlq);
  const dead = dlq.reduce((n, p) => n + Number(p.high), 0);
  if (dead > 0) throw new Error(`the tokenizer dead-lettered ${dead} bench records: the rates do not count tokenized events only`);

  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const of = (k: number) => rounds.filter((r) => r.instances === k);
  const busy = (rs: Round[]) => (rs.every((r) => r.machineBusyPct !== undefined) ? round(mean(rs.map((r) => r.machineBusyPct!)), 1) : undefined);
  const base = mean(of(1).map((r) => r.eventsPerS));
  const scaled = mean(of(INSTANCES).map((r) => r.eventsPerS));
  result = {
    bench: 'tokenizer-scaling',
    events: events.length,
    partitions: PARTITIONS,
    cores: availableParallelism(),
    instances: INSTANCES,
    events_per_s: round(scaled, 0),
    baseline_events_per_s: round(base, 0),
    ratio: round(scaled / base, 3),
    machine_busy_pct: busy(of(INSTANCES)),
    baseline_machine_busy_pct: busy(of(1)),
    rounds: rounds.map((r) => ({ instances: r.instances, events_per_s: round(r.eventsPerS, 0), machine_busy_pct: r.machineBusyPct === undefined ? null : round(r.machineBusyPct, 1) })),
  };
} catch (err) {
  say(`tokenizer-scaling failed: ${err instanceof Error ? err.message : String(err)}`);
  await cleanup.run();
  process.exit(1);
}
await cleanup.run();
console.log(JSON.stringify(result));
