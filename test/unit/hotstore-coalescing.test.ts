import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuditlineError } from '../../core/errors.js';
import { CoalescingWriter } from '../../consumers/hotstore/coalescing-writer.js';
import type { EventRows } from '../../consumers/hotstore/rows.js';
import type { RejectedEvent } from '../../consumers/hotstore/writer.js';

const rows = (...ids: string[]): EventRows[] => ids.map((eventId) => ({ eventId }) as unknown as EventRows);

/** A writer that records each call and refuses the events named in `refuse` (as HotstoreWriter reports rejected rows). */
function recordingWriter(refuse: string[] = [], fail?: Error) {
  const calls: string[][] = [];
  return {
    calls,
    fail,
    async write(events: readonly EventRows[]): Promise<{ rejected: RejectedEvent[] }> {
      calls.push(events.map((e) => e.eventId));
      await new Promise((r) => setTimeout(r, 5));
      if (this.fail) throw this.fail;
      return { rejected: events.flatMap((e, index) => (refuse.includes(e.eventId) ? [{ index, reason: `refused ${e.eventId}` }] : [])) };
    },
  };
}

test('small batches handed over in one turn share one write, in order; each caller gets its own rejected events by its own index', async () => {
  const inner = recordingWriter(['b2', 'c1']);
  const writer = new CoalescingWriter(inner, 100);
  const [a, b, c] = await Promise.all([writer.write(rows('a1', 'a2')), writer.write(rows('b1', 'b2', 'b3')), writer.write(rows('c1'))]);
  assert.deepEqual(inner.calls, [['a1', 'a2', 'b1', 'b2', 'b3', 'c1']]);
  assert.deepEqual(a, { rejected: [] });
  assert.deepEqual(b, { rejected: [{ index: 1, reason: 'refused b2' }] });
  assert.deepEqual(c, { rejected: [{ index: 0, reason: 'refused c1' }] });

  // A later turn starts a new write.
  await writer.write(rows('d1'));
  assert.deepEqual(inner.calls.at(-1), ['d1']);
});

test('a batch at or above the threshold (a backlog) is written on its own, not held for others', async () => {
  const inner = recordingWriter();
  const writer = new CoalescingWriter(inner, 3);
  await Promise.all([writer.write(rows('big1', 'big2', 'big3')), writer.write(rows('s1')), writer.write(rows('s2'))]);
  assert.deepEqual(inner.calls, [['big1', 'big2', 'big3'], ['s1', 's2']]);
});

test('a failed shared write fails every batch in it with the same retriable error; the next write goes through', async () => {
  const outage = new AuditlineError('CLICKHOUSE_UNAVAILABLE', 'ClickHouse failed inserting 3 events: ECONNREFUSED', { retriable: true });
  const inner = recordingWriter([], outage);
  const writer = new CoalescingWriter(inner, 100);
  const settled = await Promise.allSettled([writer.write(rows('a1')), writer.write(rows('b1', 'b2'))]);
  assert.deepEqual(settled.map((s) => s.status), ['rejected', 'rejected']);
  for (const s of settled) assert.equal((s as PromiseRejectedResult).reason, outage);
  assert.deepEqual(inner.calls, [['a1', 'b1', 'b2']]);

  // ClickHouse is back: each batch's retry is written.
  inner.fail = undefined;
  assert.deepEqual(await Promise.all([writer.write(rows('a1')), writer.write(rows('b1', 'b2'))]), [{ rejected: [] }, { rejected: [] }]);
  assert.deepEqual(inner.calls.at(-1), ['a1', 'b1', 'b2']);
});

test('the writer heartbeats between the inserts that isolate refused rows; a refused heartbeat ends the write with its own error, not as an outage', async () => {
  const { ClickHouseError } = await import('@clickhouse/client');
  const { HotstoreWriter } = await import('../../consumers/hotstore/writer.js');
  const { BatchAbandonedError } = await import('../../core/service/index.js');
  const event = (id: string) => ({ eventId: id, detail: { table: 'steps', row: { event_id: id } }, event: { event_id: id } }) as unknown as EventRows;
  let inserts = 0;
  // ClickHouse refuses every insert that holds an event named bad*.
  const client = {
    async insert({ values }: { values: { event_id: string }[] }) {
      inserts += 1;
      if (values.some((v) => v.event_id.startsWith('bad'))) throw new ClickHouseError({ message: 'x', code: '72', type: 'CANNOT_PARSE_NUMBER' });
    },
  };
  const batch = ['a', 'bad1', 'b', 'c', 'bad2', 'd', 'e', 'bad3'].map(event);
  let beats = 0;
  const writer = new HotstoreWriter(client as never, 'db');
  const { rejected } = await writer.write(batch, { heartbeat: async () => void (beats += 1) });
  assert.deepEqual(rejected.map((r) => r.index), [1, 4, 7]);
  assert.ok(beats >= inserts / 2, `${beats} heartbeats for ${inserts} inserts`);

  let calls = 0;
  const abandoned = new BatchAbandonedError();
  const refused = writer.write(batch, { heartbeat: async () => { if (++calls === 3) throw abandoned; } });
  await assert.rejects(refused, (err) => err === abandoned);

  // The coalescing writer hands the shared write a heartbeat of its batches.
  const seen: unknown[] = [];
  const inner = { write: async (_e: readonly EventRows[], o: { heartbeat?: () => Promise<void> } = {}) => (seen.push(o.heartbeat), { rejected: [] }) };
  const beat = async () => undefined;
  const shared = new CoalescingWriter(inner, 100);
  await Promise.all([shared.write(rows('x1')), shared.write(rows('y1'), { heartbeat: beat })]);
  assert.deepEqual(seen, [beat]);
});
