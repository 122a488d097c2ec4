import { readFile } from 'node:fs/promises';
import { getDocument } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { assetPath } from '../../core/paths.js';

/** pdf.js reads the metrics of the 14 standard PDF fonts (Courier, Helvetica) from its package. */
const STANDARD_FONTS = `${assetPath('node_modules', 'pdfjs-dist', 'standard_fonts')}/`;

/** The text of every page of a PDF, as lines (text items sharing a baseline, left to right), parsed back with pdf.js. */
export async function pdfPages(file: string): Promise<string[][]> {
  const data = new Uint8Array(await readFile(file));
  const pdf = await getDocument({ data, useSystemFonts: false, isEvalSupported: false, standardFontDataUrl: STANDARD_FONTS }).promise;
  const pages: string[][] = [];
  try {
    for (let n = 1; n <= pdf.numPages; n++) {
      const content = await (await pdf.getPage(n)).getTextContent();
      const lines = new Map<number, { x: number; s: string }[]>();
      for (const item of content.items) {
        if (!('str' in item)) continue;
        const y = Math.round(item.transform[5] as number);
        lines.set(y, [...(lines.get(y) ?? []), { x: item.transform[4] as number, s: item.str }]);
      }
      pages.push(
        [...lines.entries()]
          .sort((a, b) => b[0] - a[0])
          .map(([, items]) => items.sort((a, b) => a.x - b.x).map((i) => i.s).join('').trimEnd())
          .filter((l) => l.trim() !== ''),
      );
    }
  } finally {
    await pdf.destroy();
  }
  return pages;
}
