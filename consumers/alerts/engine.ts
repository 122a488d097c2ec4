import { makeAlert, type Alert } from './alert.js';
import type { Rule } from './rules.js';
import { PII_SIGNAL_RULE, type Signal } from './signals.js';

/** One persisted state entry (docs/alerts.md, "State"). `touched` is the wall time of the last change, for the idle sweep. */
type Entry =
  | { t: 'window'; touched: number; hits: [time: number, execution: string, event: string, workflow: string][]; /** Event ids of the last alert's window: a redelivered one is not counted again. */ fired?: string[] }
  | { t: 'fired'; touched: number; at: number; id: string }
  | { t: 'pii'; touched: number }
  | { t: 'open'; touched: number; deadline: number; start: number; event: string; workflow: string }
  | { t: 'seen'; touched: number; last: number; fired: boolean; workflow: string; execution: string }
  | { t: 'seq'; touched: number; max: number; missing: [seq: number, noticed: number][]; workflow: string; final: boolean };

export interface EngineOptions {
  /** Entries idle for longer are dropped (executions that never finish, keys that went away). */
  idleTtlMs: number;
  linkBase?: string;
  /** Told each alert suppressed by throttling. */
  onSuppressed?: (rule: string) => void;
}

const MAX_MISSING = 100;
/** How far behind the newest hit of a threshold window a hit is kept beyond the window, for events delivered late (docs/alerts.md, "Rules"). */
export const LATE_HITS_MS = 60 * 60_000;

/**
 * The first `count` or more hits (sorted by time) spanning less than `windowMs` that include the hit of `eventId`, or
 * undefined. Only windows with the new hit need checking: without it none reached `count` (it would have fired).
 */
function windowWith<H extends [number, ...unknown[]]>(hits: H[], eventId: string, windowMs: number, count: number): H[] | undefined {
  const at = hits.findIndex((h) => h[2] === eventId);
  for (let first = 0, last = 0; first <= at; first++) {
    if (hits[at]![0] - hits[first]![0] >= windowMs) continue;
    last = Math.max(last, at);
    while (last + 1 < hits.length && hits[last + 1]![0] - hits[first]![0] < windowMs) last++;
    if (last - first + 1 >= count) return hits.slice(first, last + 1);
  }
  return undefined;
}
/** How long the gap tracker of a complete execution (final event seen, nothing missing) outlives it: long enough for redeliveries after a rebalance. */
export const FINISHED_GAP_TTL_MS = 10 * 60_000;

/**
 * The rule state of one partition of the signals topic and the transitions
 * that fire alerts. Deterministic given the signals and the clock; tracks
 * which entries changed since the last {@link takeChanges}, which the state
 * store persists with the partition's offset.
 */
export class PartitionEngine {
  private readonly entries = new Map<string, Entry>();
  private readonly changed = new Set<string>();

  constructor(
    private readonly rules: ReadonlyMap<string, Rule>,
    private readonly options: EngineOptions,
    restored: Iterable<[string, string]> = [],
  ) {
    for (const [k, v] of restored) this.entries.set(k, JSON.parse(v) as Entry);
  }

  get size(): number {
    return this.entries.size;
  }

  /** Applies one signal at wall time `now`; returns the alerts it fires. */
  apply(s: Signal, now: number): Alert[] {
    if (s.rule === PII_SIGNAL_RULE) {
      if (s.role === 'pii') this.put(`p||${s.key}`, { t: 'pii', touched: now });
      else if (s.role === 'end') this.drop(`p||${s.key}`);
      return [];
    }
    const rule = this.rules.get(s.rule);
    if (!rule) return []; // a rule removed from the file since the signal was written
    const id = `${s.rule}|${s.key}`;
    switch (rule.kind) {
      case 'match': {
        // The shared flag signal of this event comes after the rule signals: the event's own flag counts too.
        const touched = s.pii || this.entries.has(`p||${s.key}`);
        if (rule.touchedPii && !touched) return [];
        const summary = rule.touchedPii ? `${rule.name}: execution ${s.key} of ${s.workflow_id} matched and touched PII` : `${rule.name}: execution ${s.key} of ${s.workflow_id} matched`;
        return this.fire(rule, s.key, s.event_id, now, summary, { event_ids: [s.event_id], workflow_ids: [s.workflow_id], first_event_time: s.event_time, last_event_time: s.event_time, touched_pii: rule.touchedPii ? true : undefined, published_ms: s.published_ms }, [s.execution_id], 1);
      }
      case 'threshold': {
        const k = `w|${id}`;
        const w = (this.entries.get(k) as Extract<Entry, { t: 'window' }> | undefined) ?? { t: 'window', touched: now, hits: [] };
        if (w.hits.some((h) => h[2] === s.event_id) || w.fired?.includes(s.event_id)) return []; // a redelivered signal
        w.hits.push([s.event_time, s.execution_id, s.event_id, s.workflow_id]);
        w.hits.sort((a, b) => a[0] - b[0]);
        // Events of one key come from every partition of audit.events: one that lags delivers older events after
        // newer ones. Hits are kept LATE_HITS_MS beyond the window behind the newest, so a late event still counts with
        // the events around it (by event time), not only with those in the window that ends at the newest.
        const newest = w.hits[w.hits.length - 1]![0];
        w.hits = w.hits.filter((h) => h[0] > newest - rule.windowMs - LATE_HITS_MS);
        w.touched = now;
        const hits = windowWith(w.hits, s.event_id, rule.windowMs, rule.count);
        if (!hits) {
          this.put(k, w);
          return [];
        }
        // The window starts over after firing: the next alert needs `count` new events, and the events of this one,
        // delivered again (a retried batch), do not count again. Hits outside it (older or newer) were in no alert and stay.
        const firedIds = new Set(hits.map((h) => h[2]));
        this.put(k, { t: 'window', touched: now, hits: w.hits.filter((h) => !firedIds.has(h[2])), fired: [...firedIds] });
        return this.fire(
          rule,
          s.key,
          hits.map((h) => h[2]).sort().join(','),
          now,
          `${rule.name}: ${hits.length} matching events for ${rule.key} ${s.key} within ${Math.round(rule.windowMs / 1000)} s`,
          {
            event_ids: hits.map((h) => h[2]),
            workflow_ids: [...new Set(hits.map((h) => h[3]))],
            first_event_time: hits[0]![0],
            last_event_time: hits[hits.length - 1]![0],
            window_ms: rule.windowMs,
            threshold: rule.count,
            published_ms: s.published_ms,
          },
          [...new Set(hits.map((h) => h[1]))],
          hits.length,
        );
      }
      case 'absence': {
        const k = `a|${id}`;
        if (rule.start) {
          // The deadline counts from the execution's first start: a later event matching start too (a step, when start
          // tests the workflow alone) does not move it.
          const open = this.entries.get(k) as Extract<Entry, { t: 'open' }> | undefined;
          if (s.role === 'start' && (!open || s.event_time < open.start)) this.put(k, { t: 'open', touched: now, deadline: s.event_time + rule.withinMs, start: s.event_time, event: s.event_id, workflow: s.workflow_id });
          else if (s.role === 'end') this.drop(k);
        } else {
          const prev = this.entries.get(k) as Extract<Entry, { t: 'seen' }> | undefined;
          // Only a newer event ends a silence (and re-arms it): an older one delivered again (a stage-1 batch
          // retried or replayed) changes nothing, so a silence already alerted is not alerted again.
          if (prev && s.event_time <= prev.last) return [];
          this.put(k, { t: 'seen', touched: now, last: s.event_time, fired: false, workflow: s.workflow_id, execution: s.execution_id });
        }
        return [];
      }
      case 'gap': {
        const k = `g|${id}`;
        const g = (this.entries.get(k) as Extract<Entry, { t: 'seq' }> | undefined) ?? { t: 'seq', touched: now, max: 0, missing: [], workflow: s.workflow_id, final: false };
        if (s.sequence > g.max + 1) {
          for (let n = g.max + 1; n < s.sequence && g.missing.length < MAX_MISSING; n++) g.missing.push([n, s.event_time]);
        }
        g.missing = g.missing.filter(([n]) => n !== s.sequence);
        g.max = Math.max(g.max, s.sequence);
        g.final ||= s.final;
        g.touched = now;
        // A complete execution's tracker is kept a while (FINISHED_GAP_TTL_MS), not dropped: an event of it delivered
        // again (a batch retried after a rebalance) would otherwise start a new tracker and report 1..n-1 missing.
        this.put(k, g);
        return [];
      }
    }
  }

  /**
   * Evaluates the timers (absence deadlines, silence, gap grace periods) at
   * `clock` and sweeps idle entries. Timers compare event times, so `clock`
   * may pass a time only once every signal of the events published before
   * it has been applied (RuleStage.tick): while a backlog is read it trails
   * the wall time `now`, or a finish still in the backlog would be alerted
   * as missing.
   */
  tick(now: number, clock = now): Alert[] {
    const alerts: Alert[] = [];
    for (const [k, e] of [...this.entries]) {
      const [prefix, ruleName, ...rest] = k.split('|');
      const key = rest.join('|');
      const rule = ruleName === undefined ? undefined : this.rules.get(ruleName);
      if (e.t === 'pii') {
        if (now - e.touched > this.options.idleTtlMs) this.drop(k);
        continue;
      }
      if (e.t === 'fired') {
        if (!rule || now - e.at >= rule.throttleMs) this.drop(k);
        continue;
      }
      if (!rule) {
        this.drop(k);
        continue;
      }
      if (e.t === 'open' && rule.kind === 'absence' && clock >= e.deadline) {
        this.drop(k);
        alerts.push(
          ...this.fire(rule, key, e.event, now, `${rule.name}: execution ${key} of ${e.workflow} started without a finish within ${Math.round(rule.withinMs / 1000)} s`, { event_ids: [e.event], workflow_ids: [e.workflow], first_event_time: e.start, within_ms: rule.withinMs }, [key], 1),
        );
      } else if (e.t === 'seen' && rule.kind === 'absence' && !e.fired && clock - e.last >= rule.withinMs && !this.throttled(rule, key, now)) {
        // Inside the throttle of an earlier silence the entry stays unfired: the silence is alerted once the throttle ends.
        this.put(k, { ...e, fired: true, touched: now });
        alerts.push(
          ...this.fire(rule, key, String(e.last), now, `${rule.name}: no events for ${rule.key} ${key} since ${new Date(e.last).toISOString()}`, { event_ids: [], workflow_ids: [e.workflow], last_event_time: e.last, within_ms: rule.withinMs }, [e.execution], 0),
        );
      } else if (e.t === 'seq' && e.final && e.missing.length === 0) {
        if (now - e.touched > FINISHED_GAP_TTL_MS) this.drop(k);
        continue;
      } else if (e.t === 'seq' && rule.kind === 'gap') {
        const due = e.missing.filter(([, noticed]) => clock - noticed >= rule.graceMs).map(([n]) => n);
        if (due.length > 0) {
          const remaining = e.missing.filter(([n]) => !due.includes(n));
          this.put(k, { ...e, missing: remaining, touched: now });
          alerts.push(
            ...this.fire(rule, key, due.join(','), now, `${rule.name}: execution ${key} of ${e.workflow} is missing sequence numbers ${due.join(', ')}`, { event_ids: [], workflow_ids: [e.workflow], missing_sequences: due }, [key], 0),
          );
          continue;
        }
      }
      // An entry that can still fire (an unfired silence, a gap tracker not yet complete) is idle by the timers'
      // clock: after a downtime longer than the idle TTL it must not be swept before the backlog lets it fire. The
      // others are idle by the wall clock, so they go also while a backlog holds the timers back.
      const current = this.entries.get(k);
      if (!current || current.t === 'open') continue;
      // Every gap tracker here is not yet complete (complete ones went by FINISHED_GAP_TTL_MS above), so it can fire:
      // its execution's next event, still in the backlog, may show a gap.
      const canFire = (current.t === 'seen' && !current.fired) || current.t === 'seq';
      if ((canFire ? clock : now) - current.touched > this.options.idleTtlMs) this.drop(k);
    }
    return alerts;
  }

  /** Entries changed since the last call: value JSON, or null when deleted. */
  takeChanges(): [string, string | null][] {
    const out: [string, string | null][] = [...this.changed].map((k) => {
      const e = this.entries.get(k);
      return [k, e ? JSON.stringify(e) : null];
    });
    this.changed.clear();
    return out;
  }

  /** True while an earlier alert of the rule and key holds its throttle. */
  private throttled(rule: Rule, key: string, now: number): boolean {
    const last = this.entries.get(`f|${rule.name}|${key}`) as Extract<Entry, { t: 'fired' }> | undefined;
    return last !== undefined && rule.throttleMs > 0 && now - last.at < rule.throttleMs;
  }

  private fire(rule: Rule, key: string, cause: string, now: number, summary: string, evidence: Parameters<typeof makeAlert>[5], executionIds: string[], count: number): Alert[] {
    const alert = makeAlert(rule, key, cause, now, summary, evidence, executionIds, count, this.options.linkBase);
    const k = `f|${rule.name}|${key}`;
    const last = this.entries.get(k) as Extract<Entry, { t: 'fired' }> | undefined;
    if (last?.id === alert.alert_id) return []; // the same cause again (a redelivered signal)
    if (this.throttled(rule, key, now)) {
      this.options.onSuppressed?.(rule.name);
      return [];
    }
    // Without throttling nothing needs remembering (a redelivered cause repeats the same alert id, which receivers drop).
    if (rule.throttleMs > 0) this.put(k, { t: 'fired', touched: now, at: now, id: alert.alert_id });
    return [alert];
  }

  private put(k: string, e: Entry): void {
    this.entries.set(k, e);
    this.changed.add(k);
  }

  private drop(k: string): void {
    if (this.entries.delete(k)) this.changed.add(k);
  }
}
