import { readFileSync } from 'node:fs';
import { chmod, copyFile, link, mkdir, open, readFile, readdir, rename, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { ProducerLogger } from './logger.js';
import { errorMessage } from '../core/errors.js';
import { spoolFailed } from './producer-errors.js';
import { encodeRecords, parseRecords, type SpoolRecord } from './spool-format.js';
import { currentBootId, isProcessAlive, processIdentity, processStartTicks } from '../core/process-alive.js';

/** Segment files: `<pid>-<instance id>-<number>.spool`; the pid tells others whether the owner still runs. */
const SEGMENT_FILE = /^(\d+)-([0-9a-f-]{36})-(\d{6,})\.spool$/;
/** Producer instances of this process that hold a spool, so that a sibling never claims their files. */
const liveInstances = new Set<string>();
const SCAN_CHUNK = 1024 * 1024;
/** Largest default segment size (a quarter of maxBytes below 256 MiB). */
const MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
const noop = (): void => {};

/** One segment file and how far Kafka has taken it. */
export interface Segment {
  path: string;
  fh: FileHandle;
  /** Bytes of complete, fsync'ed records. */
  size: number;
  /** Bytes already acknowledged by Kafka. */
  cursor: number;
  pending: number;
  /** The segment appends go to; sealed segments are deleted once sent. */
  active: boolean;
}

/** Records read from the spool for one send; hand it back to commit() once Kafka acknowledged them. */
export interface SpoolBatch {
  readonly records: SpoolRecord[];
  readonly segment: Segment;
  readonly end: number;
  /** CRC of the batch's last record: stored with the position so that it is never taken for another record's end. */
  readonly endCrc: number;
}

export interface SpoolOptions {
  dir: string;
  instanceId: string;
  /** Appends that would leave more than this many bytes unsent (not acknowledged by Kafka) fail. */
  maxBytes: number;
  /**
   * An active segment larger than this (and not caught up) is sealed and a
   * new one started. @default a quarter of maxBytes, at most 64 MiB: the
   * acknowledged start of the segment being replayed stays on disk, so
   * the files hold at most maxBytes plus about one segment.
   */
  segmentBytes?: number;
  logger: ProducerLogger;
  /** A directory whose orphaned segments are moved here first (the default spool directory before session 7). */
  adoptFrom?: string;
}

/**
 * The durable spool: an ordered list of append-only segment files in one
 * directory. `append` writes and fdatasyncs before it resolves; `read` and
 * `commit` hand records to Kafka in the order they were appended, and a
 * segment is deleted (the active one truncated) once everything in it was
 * acknowledged. On open, segments left by a process that no longer runs
 * (crash, SIGKILL) are claimed by an atomic rename and replayed first.
 */
export class Spool {
  private readonly segments: Segment[] = [];
  private counter = 0;
  private pendingCount = 0;
  private acknowledgedCount = 0;
  private lock: Promise<unknown> = Promise.resolve();
  private closed = false;
  private readonly segmentBytes: number;

  private constructor(private readonly options: SpoolOptions) {
    this.segmentBytes = options.segmentBytes ?? Math.max(1, Math.min(MAX_SEGMENT_BYTES, Math.floor(options.maxBytes / 4)));
  }

  /** Opens the spool directory (creating it) and claims orphaned segments. Throws SPOOL_FAILED. */
  static async open(options: SpoolOptions): Promise<Spool> {
    const spool = new Spool(options);
    liveInstances.add(options.instanceId);
    try {
      // Spooled records are raw events with their PII in clear: only this account may read them.
      await mkdir(options.dir, { recursive: true, mode: 0o700 });
      await securePrivateDir(options.dir, options.logger);
      await writeOwnerFile(options.dir, options.instanceId);
      if (options.adoptFrom) await adoptSegments(options.adoptFrom, options.dir, options.instanceId, options.logger);
      await spool.claimOrphans();
    } catch (err) {
      liveInstances.delete(options.instanceId);
      await Promise.all(spool.segments.map((s) => s.fh.close().catch(noop)));
      throw spoolFailed(`directory ${options.dir} cannot be opened: ${errorMessage(err)}`, err, { spoolDir: options.dir });
    }
    return spool;
  }

  /** Events written and not yet acknowledged by Kafka. */
  get pendingEvents(): number {
    return this.pendingCount;
  }

  /**
   * Events committed (acknowledged by Kafka, or quarantined) since the spool
   * opened. Commits follow the write order, so the events pending now are
   * all acknowledged once this grew by pendingEvents.
   */
  get acknowledgedEvents(): number {
    return this.acknowledgedCount;
  }

  /**
   * Bytes of records not yet acknowledged by Kafka: what maxBytes bounds.
   * On disk there can be up to one segment more: the acknowledged start of
   * the segment being replayed, kept until the rest of it is sent.
   */
  get pendingBytes(): number {
    return this.segments.reduce((sum, s) => sum + s.size - s.cursor, 0);
  }

  get dir(): string {
    return this.options.dir;
  }

  /** Appends records in order and fdatasyncs them; resolves only once they are durable. */
  append(records: readonly SpoolRecord[]): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) throw spoolFailed('is closed');
      const data = encodeRecords(records);
      if (this.pendingBytes + data.length > this.options.maxBytes) {
        throw spoolFailed(`is full (maxSpoolBytes ${this.options.maxBytes})`, undefined, { spoolDir: this.options.dir, reason: 'full' });
      }
      let segment = this.segments.find((s) => s.active);
      if (!segment || (segment.size >= this.segmentBytes && segment.cursor < segment.size)) segment = await this.startSegment();
      try {
        await writeAll(segment.fh, data, segment.size);
        await segment.fh.datasync();
      } catch (err) {
        // Cut a partial write off so the file stays a sequence of whole records.
        await segment.fh.truncate(segment.size).catch(noop);
        throw spoolFailed('write failed', err, { spoolDir: this.options.dir });
      }
      segment.size += data.length;
      segment.pending += records.length;
      this.pendingCount += records.length;
    });
  }

  /** The oldest unsent records (one segment at a time), or null when everything was sent. */
  async read(maxRecords: number, maxBytes: number): Promise<SpoolBatch | null> {
    const segment = this.segments.find((s) => s.cursor < s.size);
    if (!segment) return null;
    let want = Math.min(segment.size - segment.cursor, Math.max(maxBytes, 64 * 1024));
    for (;;) {
      const buf = await readAt(segment.fh, segment.cursor, want);
      const parsed = parseRecords(buf, maxRecords, maxBytes);
      if (parsed.records.length > 0) {
        return { segment, records: parsed.records.map((r) => r.record), end: segment.cursor + parsed.consumed, endCrc: parsed.records.at(-1)!.crc };
      }
      if (parsed.stop?.reason === 'incomplete' && segment.cursor + parsed.stop.needed <= segment.size) {
        want = parsed.stop.needed;
        continue;
      }
      throw spoolFailed(`segment ${path.basename(segment.path)} is corrupt at byte ${segment.cursor}`, undefined, { spoolDir: this.options.dir });
    }
  }

  /**
   * Marks a batch as acknowledged by Kafka; removes what is no longer needed.
   * The new position is written beside the segment (`<segment>.pos`) so that
   * a later producer claiming the segment starts there, not at its first record.
   */
  commit(batch: SpoolBatch): Promise<void> {
    return this.exclusive(async () => {
      const segment = batch.segment;
      segment.cursor = batch.end;
      segment.pending -= batch.records.length;
      this.pendingCount -= batch.records.length;
      this.acknowledgedCount += batch.records.length;
      if (segment.cursor < segment.size) {
        await this.savePosition(segment, batch.endCrc);
        return;
      }
      if (segment.active) {
        // Caught up: start the file over instead of creating a new one per batch. The
        // position goes first; should it stay, the file is kept as it is (a position
        // left over from before the truncation would not match the new records anyway).
        if (await removePosition(segment.path)) {
          await segment.fh.truncate(0);
          segment.size = 0;
          segment.cursor = 0;
        }
      } else {
        await segment.fh.close();
        await unlink(segment.path);
        await removePosition(segment.path);
        this.segments.splice(this.segments.indexOf(segment), 1);
      }
    });
  }

  /**
   * Moves records Kafka refused for good to `rejected-<time>-<instance>.spool`
   * (same format, never replayed automatically) and commits them, so one bad
   * record cannot block the spool. Returns the file written.
   */
  async quarantine(batch: SpoolBatch): Promise<string> {
    const file = path.join(this.options.dir, `rejected-${Date.now()}-${this.options.instanceId}.spool`);
    const fh = await open(file, 'a', 0o600);
    try {
      await fh.write(encodeRecords(batch.records));
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await this.commit(batch);
    return file;
  }

  /** Closes the files; unsent segments stay for the next producer on this directory. */
  close(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) return;
      this.closed = true;
      for (const segment of this.segments) {
        await segment.fh.close().catch(noop);
        if (segment.cursor >= segment.size) {
          await unlink(segment.path).catch(noop);
          await removePosition(segment.path);
        }
      }
      // The owner file stays while segments of this producer do: it tells a later process with this pid from this one.
      if (this.segments.every((s) => s.cursor >= s.size)) await unlink(ownerFile(this.options.dir, `${process.pid}-${this.options.instanceId}`)).catch(noop);
      this.segments.length = 0;
      liveInstances.delete(this.options.instanceId);
    });
  }

  /**
   * Claims the segments of producers that no longer run, an owner at a time
   * and as a whole: under its claim marker, its segments in the order it
   * wrote them. Of producers starting together, one takes all of an
   * owner's segments, so one execution's events are never replayed by two.
   */
  private async claimOrphans(): Promise<void> {
    const dir = this.options.dir;
    const names = await readdir(dir);
    const mine = `${process.pid}-${this.options.instanceId}`;
    // An earlier open of this producer that failed part-way (ready() is retried) may have claimed segments under
    // its name: they are not live, so they are claimed again, and this spool's new files are numbered above them.
    for (const name of names) {
      const number = name.startsWith(`${mine}-`) ? /^\d{6,}/.exec(name.slice(mine.length + 1)) : null;
      if (number) this.counter = Math.max(this.counter, Number(number[0]));
    }
    const owners = new Map<string, { segments: { name: string; number: number }[]; firstSeen: number }>();
    let unverified = 0;
    for (const name of names) {
      const orphan = orphanSegment(dir, name);
      const state = orphan?.owner === mine ? 'dead' : orphan?.state;
      if (state === 'unverified') unverified += 1;
      if (!orphan || state !== 'dead') continue;
      const info = await stat(path.join(dir, name)).catch(() => undefined);
      if (!info) continue;
      const owner = owners.get(orphan.owner) ?? { segments: [], firstSeen: Infinity };
      owner.segments.push({ name, number: orphan.number });
      owner.firstSeen = Math.min(owner.firstSeen, info.mtimeMs);
      owners.set(orphan.owner, owner);
    }
    // Oldest owner first; within an owner, its segments in the order it wrote them.
    const order = [...owners].sort(([a, x], [b, y]) => x.firstSeen - y.firstSeen || a.localeCompare(b));
    const claimed: string[] = [];
    for (const [owner, { segments }] of order) {
      if (!(await this.lockOwner(owner))) continue;
      try {
        let whole = true;
        for (const f of segments.sort((a, b) => a.number - b.number)) {
          const target = path.join(dir, this.nextName());
          whole = await claimSegment(path.join(dir, f.name), target);
          if (!whole) break; // taken by another producer: so are the owner's later ones
          claimed.push(target);
        }
        if (whole && owner !== mine) await unlink(ownerFile(dir, owner)).catch(noop);
      } finally {
        await unlink(claimMarker(dir, owner)).catch(noop);
      }
    }
    for (const target of claimed) {
      const segment = await this.openClaimed(target);
      if (segment.pending === 0) {
        await segment.fh.close();
        await unlink(target);
        await removePosition(target);
      } else {
        this.segments.push(segment);
        this.pendingCount += segment.pending;
      }
    }
    await removeLeftovers(dir, names);
    if (unverified > 0) {
      this.options.logger.warn(
        { spoolDir: dir, segments: unverified },
        'spool segments of other running processes left alone: written by an older version without an owner file, so a pid reused after a reboot cannot be told from their producer; if no producer of that pid runs, stop this one and remove the pid from their names',
      );
    }
    if (this.pendingCount > 0) {
      this.options.logger.info({ spoolDir: dir, events: this.pendingCount }, 'claimed spooled audit events of a previous producer');
    }
  }

  /**
   * Takes the claim marker `<owner>.claim` (made whole, then linked into
   * place: exclusive); false while a producer that still runs holds it.
   * One whose holder no longer runs (it died claiming) is taken over.
   */
  private async lockOwner(owner: string): Promise<boolean> {
    const marker = claimMarker(this.options.dir, owner);
    const mine = `${process.pid}-${this.options.instanceId}`;
    const draft = path.join(this.options.dir, `${mine}.claim-draft`);
    await writeFile(draft, mine, { mode: 0o600 });
    try {
      await link(draft, marker);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = OWNER_ID.exec(await readFile(marker, 'utf8').catch(() => ''));
      if (holder && isOwnerAlive(this.options.dir, Number(holder[1]), holder[2]!)) return false;
      await rename(draft, marker);
      return true;
    } finally {
      await unlink(draft).catch(noop);
    }
  }

  /**
   * Counts a claimed segment's records from its saved position (the start
   * when there is none or it is not the end of one of its records) and cuts
   * off a torn or corrupt tail (kept aside for inspection).
   */
  private async openClaimed(file: string): Promise<Segment> {
    const fh = await open(file, 'r+');
    const size = (await fh.stat()).size;
    const saved = await readPosition(file);
    let sentCount: number | undefined;
    let offset = 0;
    let count = 0;
    let chunk = SCAN_CHUNK;
    while (offset < size) {
      const parsed = parseRecords(await readAt(fh, offset, Math.min(chunk, size - offset)));
      for (const r of parsed.records) {
        offset += r.bytes;
        count += 1;
        if (saved && offset === saved.position && r.crc === saved.crc) sentCount = count;
      }
      if (!parsed.stop) continue;
      if (parsed.stop.reason === 'corrupt' || offset + parsed.stop.needed > size) break;
      chunk = Math.max(chunk, parsed.stop.needed);
    }
    if (offset < size) {
      const tail = await readAt(fh, offset, size - offset);
      const aside = path.join(this.options.dir, `${path.basename(file, '.spool')}.corrupt`);
      await writeFile(aside, tail, { mode: 0o600 });
      await fh.truncate(offset);
      this.options.logger.warn({ spoolDir: this.options.dir, file: path.basename(aside), bytes: size - offset }, 'spool segment ended in an incomplete record; moved aside');
    }
    if (saved && sentCount === undefined) {
      this.options.logger.warn({ spoolDir: this.options.dir, file: path.basename(file), position: saved.position }, 'saved spool position is not the end of a record of its segment; replaying the segment from its start');
      await removePosition(file);
    }
    const cursor = sentCount === undefined ? 0 : saved!.position;
    return { path: file, fh, size: offset, cursor, pending: count - (sentCount ?? 0), active: false };
  }

  /** Saves how far a segment was acknowledged. Not fsync'ed: a position lost in a crash only means acknowledged records are sent again. */
  private async savePosition(segment: Segment, crc: number): Promise<void> {
    const file = positionFile(segment.path);
    try {
      await writeFile(`${file}.tmp`, `${segment.cursor} ${crc}\n`, { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    } catch (err) {
      this.options.logger.warn({ spoolDir: this.options.dir, file: path.basename(file), error: errorMessage(err) }, 'cannot save the spool position; a later producer may send acknowledged events again');
    }
  }

  private async startSegment(): Promise<Segment> {
    for (const s of this.segments) s.active = false;
    const file = path.join(this.options.dir, this.nextName());
    const fh = await open(file, 'wx+', 0o600);
    await syncDir(this.options.dir);
    const segment: Segment = { path: file, fh, size: 0, cursor: 0, pending: 0, active: true };
    this.segments.push(segment);
    return segment;
  }

  private nextName(): string {
    this.counter += 1;
    return `${process.pid}-${this.options.instanceId}-${String(this.counter).padStart(6, '0')}.spool`;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.then(fn);
    this.lock = run.catch(noop);
    return run;
  }
}

async function writeAll(fh: FileHandle, data: Buffer, position: number): Promise<void> {
  let written = 0;
  while (written < data.length) {
    const { bytesWritten } = await fh.write(data, written, data.length - written, position + written);
    written += bytesWritten;
  }
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(length);
  let read = 0;
  while (read < length) {
    const { bytesRead } = await fh.read(buf, read, length - read, position + read);
    if (bytesRead === 0) break;
    read += bytesRead;
  }
  return buf.subarray(0, read);
}

/** `<pid>-<instance>` of a producer, as claim markers hold it. */
const OWNER_ID = /^(\d+)-([0-9a-f-]{36})$/;
/**
 * Files that go with an owner's segments: positions (`<segment>.pos`,
 * `.pos.tmp`), claim markers (`<owner>.claim`), owner files
 * (`<owner>.owner`) and a claimer's marker being written
 * (`<claimer>.claim-draft`).
 */
const OWNER_SIDE_FILE = /^((\d+)-([0-9a-f-]{36}))(?:(-\d{6,}\.spool)\.pos(?:\.tmp)?|(\.claim|\.owner)|(\.claim-draft))$/;

function claimMarker(dir: string, owner: string): string {
  return path.join(dir, `${owner}.claim`);
}

/**
 * Renames a segment (and first its position) to a name of this producer;
 * false when another producer took it first.
 */
async function claimSegment(file: string, target: string): Promise<boolean> {
  // The position first: should the process die in between, the segment is replayed from its start (duplicates, no loss).
  const hasPosition = await rename(positionFile(file), positionFile(target)).then(
    () => true,
    () => false,
  );
  try {
    await rename(file, target);
    return true;
  } catch (err) {
    if (hasPosition) await removePosition(target);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Removes the positions and claim markers of producers that no longer run
 * whose segments are gone, and their claim drafts (`names`: the directory
 * as listed before the claims): what a crash between two steps leaves.
 * Such an owner never writes a segment again.
 */
async function removeLeftovers(dir: string, names: readonly string[]): Promise<void> {
  const present = new Set(names);
  for (const name of names) {
    const m = OWNER_SIDE_FILE.exec(name);
    if (!m || isOwnerAlive(dir, Number(m[2]), m[3]!)) continue;
    const [, owner, , , segment, marker] = m;
    const gone = segment ? !present.has(`${owner}${segment}`) : marker ? !names.some((n) => n.startsWith(`${owner}-`) && n.endsWith('.spool')) : true;
    if (gone) await unlink(path.join(dir, name)).catch(noop);
  }
}

/** Where a segment's acknowledged position is kept: `<segment>.pos`, text `<byte offset> <crc of the record ending there>`. */
function positionFile(segmentPath: string): string {
  return `${segmentPath}.pos`;
}

async function readPosition(segmentPath: string): Promise<{ position: number; crc: number } | undefined> {
  const text = await readFile(positionFile(segmentPath), 'utf8').catch(() => undefined);
  const m = text === undefined ? null : /^(\d+) (\d+)\n$/.exec(text);
  return m ? { position: Number(m[1]), crc: Number(m[2]) } : undefined;
}

/** Removes a segment's position file; false when it is still there. */
async function removePosition(segmentPath: string): Promise<boolean> {
  try {
    await unlink(positionFile(segmentPath));
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** The owner (`<pid>-<instance>`), number and owner state of a segment file of `dir`; undefined for another file. */
function orphanSegment(dir: string, name: string): { owner: string; number: number; state: OwnerState } | undefined {
  const m = SEGMENT_FILE.exec(name);
  if (!m) return undefined;
  const pid = Number(m[1]);
  const instance = m[2]!;
  return { owner: `${pid}-${instance}`, number: Number(m[3]), state: ownerState(dir, pid, instance) };
}

/**
 * `dead`: a producer that no longer runs — a closed producer of this
 * process, a pid that does not exist, or a pid that now belongs to another
 * process: its owner file (`<pid>-<instance>.owner` in `dir`) names
 * another boot or another start time of the pid. `unverified`: the pid
 * runs and there is no owner file to check it against (an older version
 * wrote the segment). Off Linux, a running pid is `live`.
 */
type OwnerState = 'live' | 'dead' | 'unverified';

function ownerState(dir: string, pid: number, instance: string): OwnerState {
  if (pid === process.pid) return liveInstances.has(instance) ? 'live' : 'dead';
  if (!isProcessAlive(pid)) return 'dead';
  if (currentBootId() === null) return 'live';
  const recorded = readOwnerFile(dir, `${pid}-${instance}`);
  if (!recorded) return 'unverified';
  return processIdentity({ pid, ...recorded }) === 'gone' ? 'dead' : 'live';
}

function isOwnerAlive(dir: string, pid: number, instance: string): boolean {
  return ownerState(dir, pid, instance) !== 'dead';
}

/** `<pid>-<instance>.owner`: the boot and start time of the process, which tell it from a later one given the same pid. */
function ownerFile(dir: string, owner: string): string {
  return path.join(dir, `${owner}.owner`);
}

function readOwnerFile(dir: string, owner: string): { bootId: string; startTicks: string | null } | undefined {
  try {
    const parsed = JSON.parse(readFileSync(ownerFile(dir, owner), 'utf8')) as { bootId?: unknown; startTicks?: unknown };
    if (typeof parsed.bootId !== 'string') return undefined;
    return { bootId: parsed.bootId, startTicks: typeof parsed.startTicks === 'string' ? parsed.startTicks : null };
  } catch {
    return undefined;
  }
}

/** Written (and synced: a reboot is what it must survive) when a producer opens its spool; nothing where there is no boot id. */
async function writeOwnerFile(dir: string, instanceId: string): Promise<void> {
  const bootId = currentBootId();
  if (bootId === null) return;
  const fh = await open(ownerFile(dir, `${process.pid}-${instanceId}`), 'w', 0o600);
  try {
    await fh.writeFile(JSON.stringify({ bootId, startTicks: processStartTicks(process.pid) }));
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await syncDir(dir);
}

/** Makes a new directory entry durable (a no-op where directories cannot be fsync'ed). */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some platforms refuse fsync on directories; the data itself is still synced.
  } finally {
    await fh?.close().catch(noop);
  }
}

/**
 * A spool directory others could write lets them delete acknowledged events
 * or plant a segment that would be replayed into Kafka as this producer's.
 * One this account owns is set to 0700 (mkdir's mode only applies to a
 * directory it creates). One of another account (a volume mounted with a
 * group, as Kubernetes' fsGroup does) is used, with a warning: refusing it
 * would stop every recording call.
 */
async function securePrivateDir(dir: string, logger: ProducerLogger): Promise<void> {
  const info = await stat(dir);
  if (!info.isDirectory()) throw new Error(`${dir} is not a directory`);
  const mode = (info.mode & 0o777).toString(8);
  if ((info.mode & 0o022) === 0) return;
  const uid = process.getuid?.();
  if (uid === undefined || info.uid === uid) {
    await chmod(dir, 0o700);
    logger.warn({ spoolDir: dir, mode }, 'spool directory was writable by its group or others; set to 0700');
    return;
  }
  logger.warn({ spoolDir: dir, mode, owner: info.uid }, 'spool directory belongs to another account and is writable by its group or others, who could delete or plant spooled events: give it to this service account only');
}

/** The segment name under which a file of the former directory is adopted: an orphaned segment, or one an adopter that no longer runs was moving. */
function adoptable(from: string, to: string, name: string): string | undefined {
  const moving = ADOPTING_FILE.exec(name);
  if (moving) return moving[4] || isOwnerAlive(to, Number(moving[2]), moving[3]!) ? undefined : moving[1];
  return orphanSegment(from, name)?.state === 'dead' ? name : undefined;
}

/** A segment of `from` being moved by an adopter: `<segment>.adopting-<pid>-<instance>` (in `to`, with `.tmp`, its copy). */
const ADOPTING_FILE = /^(.+\.spool)\.adopting-(\d+)-([0-9a-f-]{36})(\.tmp)?$/;

/**
 * Moves the orphaned segments of `from` (left by producers that no longer
 * run) into `to`, where claimOrphans replays them: events spooled under an
 * earlier default directory are not left behind. Copied then removed, since
 * the two may be on different file systems. Each segment is first renamed
 * to a name of this adopter in `from` (so that of adopters starting together
 * one moves it), then copied to a temporary file in `to`, fdatasync'ed and
 * renamed into place: a segment under its own name in `to` is whole. A crash
 * leaves the renamed source, which the next adopter takes over, and at
 * worst a temporary copy, which it removes.
 */
async function adoptSegments(from: string, to: string, instanceId: string, logger: ProducerLogger): Promise<void> {
  let names: string[];
  try {
    names = await readdir(from);
  } catch {
    return; // no such directory: nothing to adopt
  }
  const mine = `adopting-${process.pid}-${instanceId}`;
  let moved = 0;
  for (const name of names) {
    const segment = adoptable(from, to, name);
    if (!segment) continue;
    const source = path.join(from, `${segment}.${mine}`);
    try {
      await rename(path.join(from, name), source);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another producer is moving it
      throw err;
    }
    const target = path.join(to, segment);
    const existing = await stat(target).catch(() => undefined);
    // Already in place (a crash before the source was removed): the copy is whole, it was renamed there only once synced.
    if (existing?.size !== (await stat(source)).size) {
      const copy = path.join(to, `${segment}.${mine}.tmp`);
      await copyFile(source, copy);
      const fh = await open(copy, 'r+');
      await fh.datasync().finally(() => fh.close());
      await rename(copy, target);
      // The copy's directory entry is durable before the original goes.
      await syncDir(to);
    }
    await unlink(source);
    moved += 1;
  }
  for (const name of await readdir(to)) {
    const m = ADOPTING_FILE.exec(name);
    if (m?.[4] && !isOwnerAlive(to, Number(m[2]), m[3]!)) await unlink(path.join(to, name)).catch(noop);
  }
  if (moved > 0) logger.warn({ from, spoolDir: to, segments: moved }, 'moved spooled audit events from the former default spool directory; they are replayed from here');
}
