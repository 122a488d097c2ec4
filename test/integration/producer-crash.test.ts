import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTopic, deleteTopic, readEvents, recordCount } from '../helpers/producer-kafka.js';
import { uniqueName } from '../helpers/names.js';
import { tempDir } from '../helpers/temp-dir.js';

const child = fileURLToPath(new URL('../helpers/producer-child.js', import.meta.url));

/** Runs the child script; `until` may kill it (SIGKILL) once its output says so. */
function runChild(args: string[], until?: (acks: number) => boolean): Promise<{ lines: string[]; code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let acks = 0;
    proc.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      acks = out.split('\n').filter((l) => l.startsWith('ACK ')).length;
      if (until?.(acks)) proc.kill('SIGKILL');
    });
    proc.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`child exited with ${code}: ${err.slice(-2000)}`));
      // Only whole lines count: a line cut by the kill was not fully printed.
      else resolve({ lines: out.split('\n').slice(0, out.endsWith('\n') ? undefined : -1).filter(Boolean), code, signal });
    });
  });
}

const scenarios = [
  { name: 'Kafka up (part delivered, part still spooled at the kill)', brokers: [] as string[] },
  { name: 'Kafka unreachable (everything acknowledged is only in the spool)', brokers: ['127.0.0.1:1'] },
];

/** Records `run` in a child on a fresh topic and spool, SIGKILLs it after `killAfter` acks, and says what was left where. */
async function crash(brokers: string[], killAfter: number) {
  const topic = uniqueName('it-producer-crash');
  await createTopic(topic);
  const spoolDir = tempDir('auditline-it-crash');
  const crashed = await runChild(['run', topic, spoolDir, ...(brokers.length ? [brokers.join(',')] : [])], (acks) => acks >= killAfter);
  assert.equal(crashed.signal, 'SIGKILL');
  const acked = crashed.lines
    .filter((l) => l.startsWith('ACK '))
    .map((l) => {
      const [, eventId, executionId, sequence] = l.split(' ');
      return { eventId: eventId!, executionId: executionId!, sequence: Number(sequence) };
    });
  assert.ok(acked.length >= killAfter);
  const left = readdirSync(spoolDir).filter((f) => f.endsWith('.spool'));
  const leftBytes = left.reduce((sum, f) => sum + statSync(path.join(spoolDir, f)).size, 0);
  return { topic, spoolDir, acked, left, leftBytes, inKafka: await recordCount(topic) };
}

for (const scenario of scenarios) {
  test(`ack 'spool', ${scenario.name}: every event acknowledged before a SIGKILL reaches Kafka after a restart`, { timeout: 60_000 }, async (t) => {
    let run = await crash(scenario.brokers, 300);
    if (!scenario.brokers.length) {
      // The premise: at the kill some events were in Kafka and some only in the spool. Another kill time when a run missed it.
      for (const killAfter of [150, 600, 1_200]) {
        if (run.leftBytes > 0 && run.inKafka > 0) break;
        t.diagnostic(`killed after ${run.acked.length} acks: ${run.leftBytes} bytes spooled, ${run.inKafka} records in Kafka; again, killed after ${killAfter}`);
        await deleteTopic(run.topic);
        run = await crash(scenario.brokers, killAfter);
      }
    }
    const { topic, spoolDir, acked, left, leftBytes, inKafka } = run;
    t.diagnostic(`killed after ${acked.length} acks; ${left.length} spool file(s), ${leftBytes} bytes left, ${inKafka} records already in Kafka`);
    if (scenario.brokers.length) assert.equal(inKafka, 0, 'nothing could reach Kafka');
    else assert.ok(inKafka > 0, `part of the acknowledged events already in Kafka at the kill: ${inKafka} of ${acked.length}`);
    assert.ok(leftBytes > 0, 'events still spooled at the kill');

    const recovered = await runChild(['recover', topic, spoolDir]);
    assert.deepEqual(recovered.lines, ['RECOVERED 0']);
    assert.deepEqual(readdirSync(spoolDir).filter((f) => /^\d+-.*\.spool$/.test(f)), [], 'spool drained');

    const total = await recordCount(topic);
    const records = await readEvents(topic, total);
    const arrived = new Set(records.map((r) => r.event.event_id));
    assert.deepEqual(acked.filter((a) => !arrived.has(a.eventId)), [], 'no acknowledged event is missing');
    t.diagnostic(`${records.length} records, ${arrived.size} distinct events, ${records.length - arrived.size} duplicate(s) identifiable by event_id`);
    for (const id of new Set(acked.map((a) => a.executionId))) {
      const sequences = records.filter((r) => r.key === id).map((r) => r.event.sequence);
      const distinct = [...new Set(sequences)];
      assert.deepEqual(distinct, distinct.slice().sort((x, y) => x - y), `execution ${id} in order`);
      assert.deepEqual(distinct, distinct.map((_, i) => i + 1), `execution ${id} without gaps`);
    }
    await deleteTopic(topic);
  });
}
