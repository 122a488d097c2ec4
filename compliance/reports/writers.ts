import { csvText } from '../../core/csv.js';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Transform, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { writePdf } from './pdf.js';
import { cellText, TotalsAccumulator, type ReportDocument, type Totals } from './document.js';

export const REPORT_FORMATS = ['csv', 'json', 'pdf'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface WriteOptions {
  /** Most table rows in a PDF (totals still cover every row). */
  pdfMaxRows: number;
  /** Called after each batch of rows with the number of rows so far (progress). */
  onRow?: (rows: number) => void;
  /** End `out` when done (false for process.stdout). @default true */
  endOutput?: boolean;
}

export interface WrittenReport {
  /** SHA-256 (hex) of every byte written. */
  sha256: string;
  bytes: number;
  rows: number;
  /** Rows the PDF table shows (equal to `rows` for CSV/JSON). */
  shownRows: number;
  totals: Totals;
}

/**
 * Streams a report document into `out` in one format, hashing every byte
 * on the way: rows are rendered as they arrive, so memory does not grow
 * with the row count (the PDF buffers at most `pdfMaxRows` rows' pages).
 */
export async function writeReport(doc: ReportDocument, format: ReportFormat, out: Writable, options: WriteOptions): Promise<WrittenReport> {
  const hash = createHash('sha256');
  let bytes = 0;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      bytes += chunk.length;
      done(null, chunk);
    },
  });
  const endOutput = options.endOutput ?? true;
  hasher.pipe(out, { end: endOutput });
  const totals = new TotalsAccumulator(doc.totals);
  let rows = 0;
  const counted = (async function* () {
    for await (const batch of doc.rows) {
      for (const row of batch) totals.add(row);
      rows += batch.length;
      options.onRow?.(rows);
      yield batch;
    }
  })();
  const outDone = endOutput ? finished(out) : finished(hasher);
  // Awaited below on success; on a failure the caller destroys the output, which must not surface as an unhandled rejection.
  outDone.catch(() => undefined);
  let shownRows: number;
  try {
    if (format === 'pdf') {
      shownRows = await writePdf({ ...doc, rows: counted }, hasher, totals, options.pdfMaxRows);
    } else {
      const write = async (text: string) => {
        if (!hasher.write(text)) await once(hasher, 'drain');
      };
      if (format === 'csv') await writeCsv(doc, counted, write);
      else await writeJson(doc, counted, write, totals);
      hasher.end();
      shownRows = rows;
    }
    await outDone;
  } catch (err) {
    hasher.destroy();
    throw err;
  }
  return { sha256: hash.digest('hex'), bytes, rows, shownRows, totals: totals.totals };
}

/** One CSV field of a report: its text as csvText writes it (RFC 4180, and a leading quote on text a spreadsheet would run as a formula). */
export function csvField(value: unknown): string {
  return csvText(cellText(value));
}

async function writeCsv(doc: ReportDocument, batches: AsyncIterable<readonly Record<string, unknown>[]>, write: (text: string) => Promise<void>): Promise<void> {
  const keys = doc.columns.map((c) => c.key);
  await write(`${keys.join(',')}\r\n`);
  for await (const batch of batches) {
    let chunk = '';
    for (const row of batch) chunk += `${keys.map((k) => csvField(row[k])).join(',')}\r\n`;
    await write(chunk);
  }
}

async function writeJson(doc: ReportDocument, batches: AsyncIterable<readonly Record<string, unknown>[]>, write: (text: string) => Promise<void>, totals: TotalsAccumulator): Promise<void> {
  const keys = doc.columns.map((c) => c.key);
  const head = { title: doc.title, parameters: Object.fromEntries(doc.parameters), columns: keys, ...(doc.notes?.length ? { notes: doc.notes } : {}) };
  await write(`{"report":${JSON.stringify(head)},\n"rows":[`);
  let first = true;
  for await (const batch of batches) {
    let chunk = '';
    for (const row of batch) {
      chunk += `${first ? '\n' : ',\n'}${JSON.stringify(Object.fromEntries(keys.map((k) => [k, row[k] ?? null])))}`;
      first = false;
    }
    await write(chunk);
  }
  await write(`\n],\n"totals":${JSON.stringify(totals.totals)}}\n`);
}
