import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, fstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { isAuditlineError } from '../../core/errors.js';
import { currentBootId, processStartTicks } from '../../core/process-alive.js';
import { silentLogger } from '../../producers/logger.js';
import { Spool } from '../../producers/spool.js';
import { encodeRecord, encodeRecords, parseRecords, type SpoolRecord } from '../../producers/spool-format.js';
import { tempDir } from '../helpers/temp-dir.js';

const tmp = (): string => tempDir('auditline-spool-unit');
const rec = (i: number): SpoolRecord => ({
  key: Buffer.from(`exec-${i % 3}`),
  value: Buffer.from(`value-${i}-${'x'.repeat(i % 7)}`),
  headers: { 'auditline-pii-mode': 'hash', n: String(i) },
});
const open = (dir: string, extra: Partial<Parameters<typeof Spool.open>[0]> = {}) =>
  Spool.open({ dir, instanceId: randomUUID(), maxBytes: 1024 * 1024, logger: silentLogger, ...extra });
const spoolFiles = (dir: string): string[] => readdirSync(dir).filter((f) => f.endsWith('.spool') && !f.startsWith('rejected-'));
const values = (records: SpoolRecord[]): string[] => records.map((r) => r.value.toString());

/** Reads everything the spool holds, committing as it goes, like the replayer. */
async function drainAll(spool: Spool, batch = 2): Promise<SpoolRecord[]> {
  const out: SpoolRecord[] = [];
  for (let b = await spool.read(batch, 1 << 20); b; b = await spool.read(batch, 1 << 20)) {
    out.push(...b.records);
    await spool.commit(b);
  }
  return out;
}

test('record format: round trip with key and headers; torn and corrupt records are detected', () => {
  const records = [rec(1), rec(2), rec(3)];
  const bytes = encodeRecords(records);
  const parsed = parseRecords(bytes);
  assert.equal(parsed.consumed, bytes.length);
  assert.equal(parsed.stop, undefined);
  assert.deepEqual(parsed.records.map((r) => r.record), records);

  const torn = bytes.subarray(0, bytes.length - 3);
  const tornParsed = parseRecords(torn);
  assert.equal(tornParsed.records.length, 2);
  assert.equal(tornParsed.stop?.reason, 'incomplete');

  const flipped = Buffer.from(bytes);
  flipped[encodeRecord(records[0]!).length + 12]! ^= 0xff;
  const corrupt = parseRecords(flipped);
  assert.equal(corrupt.records.length, 1);
  assert.deepEqual(corrupt.stop, { reason: 'corrupt' });

  assert.equal(parseRecords(bytes, 2).records.length, 2, 'maxRecords');
  assert.equal(parseRecords(bytes, 10, 1).records.length, 1, 'always at least one record');
});

test('append has written the exact bytes to the segment when it resolves (its fdatasync: next test); reads come back in order; caught up means an empty file', async () => {
  const dir = tmp();
  const spool = await open(dir);
  assert.deepEqual(spoolFiles(dir), [], 'no file until something is spooled');
  await spool.append([rec(1), rec(2)]);
  await spool.append([rec(3)]);
  const [file] = spoolFiles(dir);
  assert.ok(file);
  assert.deepEqual(readFileSync(path.join(dir, file)), encodeRecords([rec(1), rec(2), rec(3)]), 'exact bytes on disk');
  assert.equal(spool.pendingEvents, 3);

  const first = await spool.read(2, 1 << 20);
  assert.deepEqual(values(first!.records), ['value-1-x', 'value-2-xx']);
  await spool.commit(first!);
  assert.equal(spool.pendingEvents, 1);
  await spool.append([rec(4)]);
  assert.deepEqual(values(await drainAll(spool)), ['value-3-xxx', 'value-4-xxxx']);
  assert.equal(spool.pendingEvents, 0);
  assert.equal(readFileSync(path.join(dir, file)).length, 0, 'truncated once everything was sent');
  await spool.close();
  assert.deepEqual(spoolFiles(dir), [], 'an empty spool leaves no file');
});

/**
 * Wraps FileHandle.prototype.datasync for the test: each call that completes is
 * logged with the file (inode) and the size it had when the sync started, so a
 * test sees whether the bytes it expects were on disk before the sync and the
 * sync finished before the call under test resolved.
 */
async function trackDatasync(t: TestContext): Promise<{ ino: number; size: number }[]> {
  const probe = await openFile(path.join(tmp(), 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { datasync: () => Promise<void> };
  await probe.close();
  const original = proto.datasync;
  const synced: { ino: number; size: number }[] = [];
  t.mock.method(proto, 'datasync', async function (this: { fd: number }) {
    const { ino, size } = fstatSync(this.fd);
    await original.call(this);
    synced.push({ ino, size });
  });
  return synced;
}

test('append and quarantine fdatasync the bytes they wrote before they resolve', async (t) => {
  const synced = await trackDatasync(t);
  const dir = tmp();
  const spool = await open(dir);
  await spool.append([rec(1), rec(2)]);
  const [file] = spoolFiles(dir);
  assert.ok(file);
  const segment = statSync(path.join(dir, file));
  assert.deepEqual(synced.at(-1), { ino: segment.ino, size: encodeRecords([rec(1), rec(2)]).length }, 'the first append synced after its write');
  await spool.append([rec(3)]);
  assert.deepEqual(synced.at(-1), { ino: segment.ino, size: encodeRecords([rec(1), rec(2), rec(3)]).length }, 'the second append synced after its write');

  const batch = await spool.read(2, 1 << 20);
  const rejected = await spool.quarantine(batch!);
  const quarantined = statSync(rejected);
  assert.equal(quarantined.size, encodeRecords([rec(1), rec(2)]).length);
  assert.ok(synced.some((s) => s.ino === quarantined.ino && s.size === quarantined.size), 'the quarantined records were synced before quarantine resolved');
  await drainAll(spool);
  await spool.close();
});

test('a new spool claims what a closed or dead producer left, replays it first, and never touches a live one', async () => {
  const dir = tmp();
  const closed = await open(dir);
  await closed.append([rec(1), rec(2), rec(3)]);
  const live = await open(dir);
  await live.append([rec(90)]);
  assert.equal(live.pendingEvents, 1, 'a sibling still open is not an orphan');
  await closed.close();

  // A segment of a process that died in the middle of a write (SIGKILL): the torn record was never acknowledged.
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  const deadFile = path.join(dir, `${deadPid}-${randomUUID()}-000001.spool`);
  const whole = encodeRecords([rec(4), rec(5)]);
  writeFileSync(deadFile, Buffer.concat([whole, encodeRecord(rec(6)).subarray(0, 11)]));

  const next = await open(dir);
  assert.equal(next.pendingEvents, 5, '3 of the closed producer + 2 whole records of the dead one');
  assert.equal(live.pendingEvents, 1);
  const replayed = values(await drainAll(next));
  assert.deepEqual(replayed.slice().sort(), ['value-1-x', 'value-2-xx', 'value-3-xxx', 'value-4-xxxx', 'value-5-xxxxx']);
  assert.deepEqual(replayed.filter((v) => /value-[123]-/.test(v)), ['value-1-x', 'value-2-xx', 'value-3-xxx'], 'in order within a producer');
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.corrupt')).length, 1, 'the torn tail is kept aside');
  assert.deepEqual(values(await drainAll(live)), ['value-90-xxxxxx'], 'the live sibling kept its own');
  await next.close();
  await live.close();
  assert.deepEqual(spoolFiles(dir), []);
});

test('a full spool refuses appends with SPOOL_FAILED', async () => {
  const spool = await open(tmp(), { maxBytes: 1024 * 1024 });
  await spool.append([{ key: Buffer.from('k'), value: Buffer.alloc(1000 * 1024), headers: {} }]);
  await assert.rejects(spool.append([{ key: Buffer.from('k'), value: Buffer.alloc(100 * 1024), headers: {} }]), (e) => isAuditlineError(e, 'SPOOL_FAILED') && /is full/.test(e.message));
  assert.equal(spool.pendingEvents, 1);
  await spool.close();
});

test('maxBytes counts only unsent bytes: what Kafka acknowledged in a segment still on disk leaves room', async () => {
  const KiB = 1024;
  const big = (kib: number, tag: string): SpoolRecord => ({ key: Buffer.from('k'), value: Buffer.alloc(kib * KiB, tag), headers: {} });
  const dir = tmp();
  // One segment for everything: its acknowledged start stays on disk until the rest is sent.
  const spool = await open(dir, { maxBytes: 1024 * KiB, segmentBytes: 64 * 1024 * KiB });
  await spool.append([big(600, 'a')]);
  await spool.append([big(1, 'b')]);
  const sent = await spool.read(1, 1 << 20);
  await spool.commit(sent!);
  assert.equal(spool.pendingEvents, 1);
  await spool.append([big(500, 'c')]); // 1 KiB + 500 KiB unsent: fits, though the file holds 1.1 MiB
  assert.equal(spool.pendingEvents, 2);
  assert.ok(spool.pendingBytes < 510 * KiB, `${spool.pendingBytes} unsent bytes`);
  await assert.rejects(spool.append([big(600, 'd')]), (e) => isAuditlineError(e, 'SPOOL_FAILED') && e.details.reason === 'full', 'still full when the unsent bytes would pass maxBytes');
  assert.deepEqual((await drainAll(spool)).map((r) => r.value[0]), [0x62, 0x63]);
  await spool.close();
});

test('a small spool kept busy never reports full while little is unsent, and its files stay within maxBytes plus a quarter of it (a segment) plus one append', async () => {
  const KiB = 1024;
  const maxBytes = 1024 * KiB;
  const dir = tmp();
  const spool = await open(dir, { maxBytes }); // the default segment size, derived from maxBytes
  const onDisk = () => spoolFiles(dir).reduce((sum, f) => sum + statSync(path.join(dir, f)).size, 0);
  let largest = 0;
  for (let i = 0; i < 60; i++) {
    await spool.append([{ key: Buffer.from('k'), value: Buffer.alloc(100 * KiB, i), headers: {} }]);
    largest = Math.max(largest, onDisk());
    // The replayer keeps up but one record behind: something is always unsent, so no segment is ever caught up.
    if (spool.pendingEvents > 1) await spool.commit((await spool.read(1, 1 << 20))!);
  }
  assert.equal(spool.pendingEvents, 1);
  assert.ok(largest <= maxBytes + maxBytes / 4 + 101 * KiB, `${largest} bytes on disk`);
  await spool.close();
});

test('segments roll over and are deleted once sent; refused records are quarantined, not lost', async () => {
  const dir = tmp();
  const spool = await open(dir, { segmentBytes: 100 });
  for (let i = 1; i <= 6; i++) await spool.append([rec(i)]);
  assert.ok(spoolFiles(dir).length >= 2, 'several segments');
  const first = await spool.read(1, 1 << 20);
  const file = await spool.quarantine(first!);
  assert.ok(path.basename(file).startsWith('rejected-'));
  assert.deepEqual(values(parseRecords(readFileSync(file)).records.map((r) => r.record)), ['value-1-x']);
  assert.deepEqual(values(await drainAll(spool, 10)), ['value-2-xx', 'value-3-xxx', 'value-4-xxxx', 'value-5-xxxxx', 'value-6-xxxxxx']);
  assert.equal(spoolFiles(dir).length, 1, 'sealed segments deleted, the active one kept (empty)');
  await spool.close();
  assert.deepEqual(spoolFiles(dir), []);
});

test('spooled raw events (PII in clear) are readable by this account only: the directory it creates is 0700, segments and quarantined files 0600', async () => {
  const dir = path.join(tmp(), 'spool');
  const spool = await open(dir);
  await spool.append([rec(1), rec(2)]);
  const batch = (await spool.read(1, 1 << 20))!;
  const rejected = await spool.quarantine(batch);
  const mode = (p: string) => statSync(p).mode & 0o777;
  assert.equal(mode(dir), 0o700);
  const files = readdirSync(dir).map((f) => path.join(dir, f));
  assert.ok(files.includes(rejected) && files.length >= 2, `a segment and the quarantined file: ${files.join(', ')}`);
  for (const f of files) assert.equal(mode(f), 0o600, f);
  await spool.close();
});

test('a spool directory of this account that its group or others may write is set to 0700 at open, with a warning', async () => {
  const dir = tmp();
  chmodSync(dir, 0o777);
  const warnings: string[] = [];
  const logger = { ...silentLogger, warn: (_o: object, msg: string) => void warnings.push(msg) };
  const spool = await open(dir, { logger });
  try {
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(warnings, ['spool directory was writable by its group or others; set to 0700']);
  } finally {
    await spool.close();
  }
});

test('segments left in a former spool directory by producers that no longer run are moved over and replayed; a live producer\'s are left', async () => {
  const former = tmp();
  const dir = tmp();
  const dead = `999999-${randomUUID()}-000001.spool`;
  const live = `${process.ppid}-${randomUUID()}-000001.spool`; // a running process: the test runner
  writeFileSync(path.join(former, dead), encodeRecords([rec(1), rec(2)]));
  writeFileSync(path.join(former, live), encodeRecords([rec(3)]));
  const spool = await open(dir, { adoptFrom: former });
  try {
    assert.deepEqual(readdirSync(former), [live], "the dead producer's segment moved, the live one's stays");
    assert.deepEqual(values(await drainAll(spool)), values([rec(1), rec(2)]));
  } finally {
    await spool.close();
  }
  const again = await open(tmp(), { adoptFrom: path.join(former, 'missing') });
  await again.close();
});

test('how far Kafka acknowledged a segment is saved: the next producer replays only the rest, and no file is left once it is sent', async () => {
  const dir = tmp();
  const first = await open(dir);
  await first.append([1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(rec));
  for (let i = 0; i < 2; i++) await first.commit((await first.read(3, 1 << 20))!);
  await first.close();
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.pos')).length, 1, 'the position is beside the segment');

  const second = await open(dir);
  assert.equal(second.pendingEvents, 4, 'the 6 acknowledged records are not counted again');
  await second.commit((await second.read(1, 1 << 20))!);
  await second.close();

  const third = await open(dir);
  assert.equal(third.pendingEvents, 3);
  assert.deepEqual(values(await drainAll(third)), values([8, 9, 10].map(rec)), 'the position moved with the claimed segment');
  await third.close();
  assert.deepEqual(readdirSync(dir), [], 'segment and position removed together');
});

test('a crashed producer\'s saved position is used only when it is the end of one of its records; otherwise the whole segment is replayed, with a warning', async () => {
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  const records = [1, 2, 3, 4].map(rec);
  const bytes = encodeRecords(records);
  const end2 = encodeRecords(records.slice(0, 2)).length;
  const crc2 = encodeRecord(records[1]!).readUInt32BE(5);
  const cases: [string, string, string[]][] = [
    ['valid', `${end2} ${crc2}\n`, values(records.slice(2))],
    ['not a record boundary', `${end2 - 1} ${crc2}\n`, values(records)],
    ['another record ends there (file reused)', `${end2} ${(crc2 ^ 1) >>> 0}\n`, values(records)],
    ['beyond the end', `${bytes.length + 100} ${crc2}\n`, values(records)],
    ['garbage', 'x', values(records)],
  ];
  for (const [name, position, expected] of cases) {
    const dir = tmp();
    const segment = path.join(dir, `${deadPid}-${randomUUID()}-000001.spool`);
    writeFileSync(segment, bytes);
    writeFileSync(`${segment}.pos`, position);
    const warnings: string[] = [];
    const spool = await open(dir, { logger: { ...silentLogger, warn: (_o: object, msg: string) => void warnings.push(msg) } });
    assert.equal(spool.pendingEvents, expected.length, name);
    assert.deepEqual(values(await drainAll(spool)), expected, name);
    assert.equal(warnings.some((w) => /position/.test(w)), name !== 'valid' && name !== 'garbage', `${name}: ${warnings.join('; ')}`);
    await spool.close();
    assert.deepEqual(readdirSync(dir), [], name);
  }
});

test('adoption from the former directory survives a crash half-way: a segment already copied, a partial copy, a renamed source and a temporary copy left behind', async () => {
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  const former = tmp();
  const dir = tmp();
  const copied = `${deadPid}-${randomUUID()}-000001.spool`; // copied whole, source not yet removed
  writeFileSync(path.join(former, copied), encodeRecords([rec(1), rec(2)]));
  writeFileSync(path.join(dir, copied), encodeRecords([rec(1), rec(2)]));
  const partial = `${deadPid}-${randomUUID()}-000001.spool`; // an earlier version's copy cut short
  writeFileSync(path.join(former, partial), encodeRecords([rec(3), rec(4)]));
  writeFileSync(path.join(dir, partial), encodeRecords([rec(3)]).subarray(0, 5));
  const moving = `${deadPid}-${randomUUID()}-000001.spool`; // an adopter died while moving it
  const adopter = `adopting-${deadPid}-${randomUUID()}`;
  writeFileSync(path.join(former, `${moving}.${adopter}`), encodeRecords([rec(5)]));
  writeFileSync(path.join(dir, `${moving}.${adopter}.tmp`), encodeRecords([rec(5)]).subarray(0, 3));

  const spool = await open(dir, { adoptFrom: former });
  try {
    assert.deepEqual(readdirSync(former), [], 'every source removed');
    assert.equal(spool.pendingEvents, 5, 'each event once');
    assert.deepEqual(values(await drainAll(spool)).sort(), values([1, 2, 3, 4, 5].map(rec)).sort());
  } finally {
    await spool.close();
  }
  assert.deepEqual(readdirSync(dir), [], 'no temporary copy left');
  const again = await open(dir, { adoptFrom: former });
  await again.close();
});

test('producers starting together adopt the former directory\'s segments without failing, each segment once', async () => {
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  const former = tmp();
  const dir = tmp();
  const all = Array.from({ length: 40 }, (_, i) => rec(i));
  for (let i = 0; i < 20; i++) writeFileSync(path.join(former, `${deadPid}-${randomUUID()}-000001.spool`), encodeRecords(all.slice(2 * i, 2 * i + 2)));
  const spools = await Promise.all([1, 2, 3].map(() => open(dir, { adoptFrom: former })));
  try {
    assert.deepEqual(readdirSync(former), []);
    assert.equal(spools.reduce((n, s) => n + s.pendingEvents, 0), 40);
    const replayed = (await Promise.all(spools.map((s) => drainAll(s)))).flat();
    assert.deepEqual(values(replayed).sort(), values(all).sort());
  } finally {
    await Promise.all(spools.map((s) => s.close()));
  }
});

/** A spool directory holding the segments (one record each) of a producer whose process is gone. */
async function deadOwnerSpool(count: number): Promise<{ dir: string; owner: string; deadPid: number }> {
  const dir = tmp();
  const writer = await open(dir, { segmentBytes: 1 });
  for (let i = 1; i <= count; i++) await writer.append([rec(i)]);
  await writer.close();
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  for (const f of readdirSync(dir)) renameSync(path.join(dir, f), path.join(dir, f.replace(/^\d+/, String(deadPid))));
  const owner = /^(\d+-[0-9a-f-]{36})-/.exec(readdirSync(dir)[0]!)![1]!;
  return { dir, owner, deadPid };
}

test('producers starting together never split one dead producer\'s segments: one of them replays all, in order', async () => {
  for (let round = 0; round < 5; round++) {
    const { dir } = await deadOwnerSpool(6);
    assert.equal(spoolFiles(dir).length, 6);
    const spools = await Promise.all([1, 2, 3].map(() => open(dir)));
    const replayed = await Promise.all(spools.map(async (s) => values(await drainAll(s))));
    assert.deepEqual(replayed.filter((r) => r.length > 0), [values([1, 2, 3, 4, 5, 6].map(rec))], `round ${round}: ${JSON.stringify(replayed)}`);
    await Promise.all(spools.map((s) => s.close()));
    assert.deepEqual(readdirSync(dir), [], 'no claim marker left');
  }
});

test('an owner whose claim marker a running producer holds is left to it; a dead claimer\'s marker is taken over; leftovers of dead owners are removed', async () => {
  const { dir, owner, deadPid } = await deadOwnerSpool(2);
  const liveId = randomUUID();
  const holder = await open(tmp(), { instanceId: liveId }); // a producer of this process that runs
  writeFileSync(path.join(dir, `${owner}.claim`), `${process.pid}-${liveId}`);
  const skipped = await open(dir);
  assert.equal(skipped.pendingEvents, 0, 'held by a producer that runs');
  await skipped.close();

  writeFileSync(path.join(dir, `${owner}.claim`), `${deadPid}-${randomUUID()}`);
  const gone = `${deadPid}-${randomUUID()}`;
  writeFileSync(path.join(dir, `${gone}-000003.spool.pos`), '10 20\n'); // its segment was removed, the position not
  writeFileSync(path.join(dir, `${gone}.claim`), `${deadPid}-${randomUUID()}`); // it died claiming after the last rename
  writeFileSync(path.join(dir, `${gone}.claim-draft`), `${gone}`);
  const taker = await open(dir);
  assert.deepEqual(values(await drainAll(taker)), values([1, 2].map(rec)));
  await taker.close();
  await holder.close();
  assert.deepEqual(readdirSync(dir), []);
});

test('a pid reused after a reboot does not strand a dead producer\'s segments: its owner file names another boot or start time', { skip: currentBootId() === null && 'no boot id off Linux' }, async () => {
  const unrelated = spawn('sleep', ['30']); // whatever process got the old pid
  try {
    const pid = unrelated.pid!;
    await new Promise((r) => setTimeout(r, 50));
    const ticks = processStartTicks(pid);
    assert.ok(ticks);
    const dir = tmp();
    const segment = (n: number, owner?: object): void => {
      const id = `${pid}-${randomUUID()}`;
      writeFileSync(path.join(dir, `${id}-000001.spool`), encodeRecords([rec(n)]));
      if (owner) writeFileSync(path.join(dir, `${id}.owner`), JSON.stringify(owner));
    };
    segment(1, { bootId: randomUUID(), startTicks: ticks }); // before a reboot
    segment(2, { bootId: currentBootId(), startTicks: String(Number(ticks) - 1) }); // the pid came round again
    segment(3, { bootId: currentBootId(), startTicks: ticks }); // that very process: running
    segment(4); // an older version's segment: cannot tell
    const warnings: { o: object; msg: string }[] = [];
    const spool = await open(dir, { logger: { ...silentLogger, warn: (o: object, msg: string) => void warnings.push({ o, msg }) } });
    assert.deepEqual(values(await drainAll(spool)).sort(), values([rec(1), rec(2)]));
    await spool.close();
    assert.equal(spoolFiles(dir).length, 2, 'the running owner\'s and the unverifiable one left');
    assert.equal(readdirSync(dir).filter((f) => f.endsWith('.owner')).length, 1, 'owner files of claimed owners removed');
    const warning = warnings.find((w) => /older version/.test(w.msg));
    assert.deepEqual(warning?.o, { spoolDir: dir, segments: 1 }, 'the unverifiable segment is reported, with a count');
  } finally {
    unrelated.kill();
  }
});

test('a producer records its boot and start time in an owner file while it has a spool; it is removed when nothing is left', { skip: currentBootId() === null && 'no boot id off Linux' }, async () => {
  const dir = tmp();
  const instanceId = randomUUID();
  const spool = await open(dir, { instanceId });
  const file = path.join(dir, `${process.pid}-${instanceId}.owner`);
  assert.deepEqual(JSON.parse(readFileSync(file, 'utf8')), { bootId: currentBootId(), startTicks: processStartTicks(process.pid) });
  await spool.append([rec(1)]);
  await spool.close();
  assert.ok(statSync(file).isFile(), 'kept with the unsent segment');
  const next = await open(dir);
  await drainAll(next);
  await next.close();
  assert.deepEqual(readdirSync(dir), []);
});

test('an open that failed after claiming a dead producer\'s segments (one of them could not be read) leaves nothing stranded: the retry by the same producer replays them and appends to new files', async () => {
  const dir = tmp();
  const deadPid = spawnSync(process.execPath, ['-e', '']).pid!;
  const dead = `${deadPid}-${randomUUID()}`;
  writeFileSync(path.join(dir, `${dead}-000001.spool`), encodeRecords([rec(1), rec(2)]));
  // Stands for a claimed segment that cannot be opened (an I/O error): a directory under a segment's name.
  mkdirSync(path.join(dir, `${dead}-000002.spool`));
  const instanceId = randomUUID();
  await assert.rejects(open(dir, { instanceId }), (e) => isAuditlineError(e, 'SPOOL_FAILED'));
  // The cause goes away (it was claimed, so it is under this producer's name now); ready() tries again.
  const unreadable = readdirSync(dir).filter((f) => f.startsWith(`${process.pid}-${instanceId}-`) && statSync(path.join(dir, f)).isDirectory());
  assert.equal(unreadable.length, 1, readdirSync(dir).join(' '));
  rmSync(path.join(dir, unreadable[0]!), { recursive: true });

  const retry = await open(dir, { instanceId });
  assert.equal(retry.pendingEvents, 2, 'the claimed records are replayed by the retry, not left under its name unseen');
  await retry.append([rec(4)]);
  assert.deepEqual(values(await drainAll(retry)), ['value-1-x', 'value-2-xx', 'value-4-xxxx']);
  await retry.close();
  assert.deepEqual(spoolFiles(dir), []);
});
