/**
 * A report as the writers see it: a title and parameters, a fixed column
 * set, rows that arrive one at a time, and totals accumulated over every
 * row. CSV, JSON and PDF are three renderings of the same document.
 */
export interface ReportColumn {
  key: string;
  /** Characters the column gets in the PDF (monospaced); longer values are cut with `…` there, never in CSV/JSON. */
  width: number;
}

export interface ReportDocument {
  title: string;
  /** Shown in the PDF header and under `report` in JSON, in this order. */
  parameters: [name: string, value: string][];
  columns: readonly ReportColumn[];
  /** Rows in batches as they arrive (one batch per ClickHouse chunk): per-batch iteration keeps the per-row cost low. */
  rows: AsyncIterable<readonly Record<string, unknown>[]>;
  totals: TotalsSpec;
  /** Remarks printed in the PDF under the parameters (e.g. where data could not be read). */
  notes?: string[];
}

/** What the totals count: rows per value of some columns, and sums of numeric columns. */
export interface TotalsSpec {
  countBy?: readonly string[];
  sum?: readonly string[];
}

export interface Totals {
  rows: number;
  by: Record<string, Record<string, number>>;
  sum: Record<string, number>;
}

/** Accumulates totals row by row (constant memory per distinct value). */
export class TotalsAccumulator {
  readonly totals: Totals;

  constructor(private readonly spec: TotalsSpec) {
    this.totals = { rows: 0, by: {}, sum: {} };
    for (const c of spec.countBy ?? []) this.totals.by[c] = {};
    for (const c of spec.sum ?? []) this.totals.sum[c] = 0;
  }

  add(row: Record<string, unknown>): void {
    this.totals.rows += 1;
    for (const c of this.spec.countBy ?? []) {
      const key = cellText(row[c]);
      const counts = this.totals.by[c]!;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    for (const c of this.spec.sum ?? []) {
      const n = Number(row[c]);
      if (Number.isFinite(n)) this.totals.sum[c]! += n;
    }
  }

  /** The totals as printed lines (`rows: 12`, `status failed: 3`, `sum of duration_ms: 1200`), keys sorted. */
  lines(): string[] {
    const out = [`rows: ${this.totals.rows}`];
    for (const [c, counts] of Object.entries(this.totals.by)) {
      for (const k of Object.keys(counts).sort()) out.push(`${c} ${k === '' ? '(empty)' : k}: ${counts[k]}`);
    }
    for (const [c, n] of Object.entries(this.totals.sum)) out.push(`sum of ${c}: ${n}`);
    return out;
  }
}

/** A cell as text: null/undefined empty, arrays joined with `;`, objects as JSON. */
export function cellText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(cellText).join(';');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
