import PDFDocument from 'pdfkit';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { cellText, type ReportColumn, type ReportDocument, type TotalsAccumulator } from './document.js';

const MARGIN = 36;
const LINE = 9;
/** Courier glyphs are 0.6 em wide: the table is monospaced so that columns line up without measuring text. */
const CHAR_EM = 0.6;
const MAX_FONT = 7;

/** A table row as one monospaced line: each value padded or cut (with `…`) to its column's width. */
export function pdfRowLine(columns: readonly ReportColumn[], row: Record<string, unknown>): string {
  return columns
    .map((c) => {
      const text = cellText(row[c.key]).replace(/[\r\n\t]+/g, ' ');
      return text.length > c.width ? `${text.slice(0, c.width - 1)}…` : text.padEnd(c.width);
    })
    .join(' ')
    .trimEnd();
}

/**
 * Renders the document as a PDF (A4 landscape, pdfkit): title,
 * parameters, notes, the table with its header repeated on every page,
 * totals over every row and "page X of Y" footers. At most `maxRows` rows
 * are drawn; the remaining rows are still read so the totals cover them,
 * and a notice says how many were left out. Pages are buffered to number
 * them, which the row cap bounds. Returns the rows drawn.
 */
export async function writePdf(doc: ReportDocument, out: Writable, totals: TotalsAccumulator, maxRows: number): Promise<number> {
  // A column is never narrower than its name, so the header row is never cut.
  const columns = doc.columns.map((c) => ({ key: c.key, width: Math.max(c.width, c.key.length) }));
  const pdf = new PDFDocument({ size: 'A4', layout: 'landscape', margin: MARGIN, bufferPages: true, info: { Title: doc.title, Producer: 'Auditline', Creator: 'auditline report' } });
  pdf.pipe(out);
  const done = finished(out);
  done.catch(() => undefined);
  const width = pdf.page.width - 2 * MARGIN;
  const lineChars = columns.reduce((n, c) => n + c.width + 1, -1);
  const fontSize = Math.min(MAX_FONT, width / (lineChars * CHAR_EM));
  const bottom = () => pdf.page.height - MARGIN - 2 * LINE;
  const header = pdfRowLine(columns, Object.fromEntries(columns.map((c) => [c.key, c.key])));
  let y = MARGIN;
  const line = (text: string, font = 'Courier', size = fontSize) => {
    pdf.font(font).fontSize(size).text(text, MARGIN, y, { lineBreak: false });
    y += Math.max(LINE, size + 2);
  };
  const tableHeader = () => {
    line(header, 'Courier-Bold');
    pdf.moveTo(MARGIN, y - 2).lineTo(MARGIN + width, y - 2).lineWidth(0.5).stroke();
  };
  const newPage = () => {
    pdf.addPage();
    y = MARGIN;
  };

  line(doc.title, 'Helvetica-Bold', 14);
  y += 4;
  for (const [name, value] of doc.parameters) line(`${name}: ${value}`, 'Courier', 8);
  for (const note of doc.notes ?? []) line(`note: ${note}`, 'Courier', 8);
  y += LINE;
  tableHeader();

  let shown = 0;
  let rows = 0;
  for await (const batch of doc.rows) {
    rows += batch.length;
    for (const row of batch) {
      if (shown >= maxRows) break;
      if (y > bottom()) {
        newPage();
        tableHeader();
      }
      line(pdfRowLine(columns, row));
      shown += 1;
    }
  }

  const closing = [
    ...(rows > shown ? [`The PDF shows the first ${shown} of ${rows} rows (AUDITLINE_REPORT_PDF_MAX_ROWS); the CSV and JSON reports with the same parameters hold every row.`] : []),
    ...totals.lines(),
  ];
  if (y + (closing.length + 2) * LINE > bottom()) newPage();
  y += LINE;
  line(`Totals${rows > shown ? ` (all ${rows} rows)` : ''}`, 'Helvetica-Bold', 10);
  for (const text of closing) {
    if (y > bottom()) newPage();
    line(text, 'Courier', 8);
  }

  const range = pdf.bufferedPageRange();
  for (let i = range.start; i < range.start + range.count; i++) {
    pdf.switchToPage(i);
    // Writing into the bottom margin must not start a new page.
    const margin = pdf.page.margins.bottom;
    pdf.page.margins.bottom = 0;
    pdf.font('Helvetica').fontSize(7).text(`${doc.title} - page ${i + 1} of ${range.count}`, MARGIN, pdf.page.height - MARGIN, { lineBreak: false });
    pdf.page.margins.bottom = margin;
  }
  pdf.end();
  await done;
  return shown;
}
