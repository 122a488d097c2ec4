import { parseIsoInstant } from '../core/iso-time.js';
import { STORABLE_TIME_RANGE } from '../core/clients/clickhouse-time.js';

/** A period of time, epoch ms, `to` exclusive. */
export interface Period {
  from: number;
  to: number;
}

const DAY_MS = 86_400_000;
/** The exclusive end of the last storable day: a period may end there (`--to 2299-12-31`), not later. */
const PERIOD_END_MAX = STORABLE_TIME_RANGE.max + 1;
const RANGE_TEXT = `periods lie within ${STORABLE_TIME_RANGE.text} (what ClickHouse stores)`;

/**
 * `2026-07-01` (a whole day, UTC) or an ISO date-time with zone (`2026-07-01T08:00:00Z`);
 * returns the instant and whether only a date was given. Undefined when unreadable.
 */
function parseInstant(text: string): { ms: number; dateOnly: boolean } | undefined {
  return parseIsoInstant(text);
}

/** The quarter `2026Q3` as [2026-07-01, 2026-10-01); undefined when unreadable or outside the storable years. */
export function quarterPeriod(text: string): Period | undefined {
  const m = /^(\d{4})-?Q([1-4])$/i.exec(text.trim());
  if (!m) return undefined;
  const year = Number(m[1]);
  // Date.UTC takes years 0-99 for 1900-1999, and a period past 2299 cannot be a ClickHouse query parameter.
  if (year < new Date(STORABLE_TIME_RANGE.min).getUTCFullYear() || year > new Date(STORABLE_TIME_RANGE.max).getUTCFullYear()) return undefined;
  const q = Number(m[2]);
  return { from: Date.UTC(year, (q - 1) * 3, 1), to: Date.UTC(year, q * 3, 1) };
}

/** The quarter holding `at` (e.g. `2026Q4`). */
export function quarterOf(at: number): string {
  const d = new Date(at);
  return `${d.getUTCFullYear()}Q${Math.floor(d.getUTCMonth() / 3) + 1}`;
}

/**
 * The period of `--from/--to` or `--quarter`. A date-only `--to` includes
 * that whole day (the period ends at the next midnight UTC); a date-time
 * `--to` is exclusive. Returns an error text for a person otherwise.
 */
export function resolvePeriod(opts: { from?: string; to?: string; quarter?: string }): Period | string {
  if (opts.quarter !== undefined) {
    if (opts.from !== undefined || opts.to !== undefined) return 'give either --quarter or --from/--to, not both';
    return quarterPeriod(opts.quarter) ?? `--quarter ${JSON.stringify(opts.quarter)}: expected YYYYQn, e.g. 2026Q3 (${RANGE_TEXT})`;
  }
  if (opts.from === undefined || opts.to === undefined) return 'give --from and --to (dates like 2026-07-01, or ISO date-times), or --quarter';
  const from = parseInstant(opts.from);
  if (!from) return `--from ${JSON.stringify(opts.from)}: expected a date (2026-07-01) or an ISO date-time with zone (2026-07-01T08:00:00Z)`;
  const to = parseInstant(opts.to);
  if (!to) return `--to ${JSON.stringify(opts.to)}: expected a date (2026-09-30) or an ISO date-time with zone (2026-09-30T18:00:00Z)`;
  const end = to.dateOnly ? to.ms + DAY_MS : to.ms;
  if (end <= from.ms) return '--to must be after --from';
  // Checked here, before the request is recorded: ClickHouse refuses a year past 9999 as a parameter, which read as an outage (exit 1).
  if (from.ms < STORABLE_TIME_RANGE.min) return `--from ${JSON.stringify(opts.from)}: ${RANGE_TEXT}`;
  if (end > PERIOD_END_MAX) return `--to ${JSON.stringify(opts.to)}: ${RANGE_TEXT}`;
  return { from: from.ms, to: end };
}
