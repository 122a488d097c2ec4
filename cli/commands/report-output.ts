import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { loadComplianceSettings, produce, REPORT_FORMATS, type ProduceDeps, type ProduceRequest, type ProduceResult, type ReportDocument, type ReportFormat } from '../../compliance/index.js';
import { UsageError } from '../exit.js';

/** Exit codes of `report`, `access-review` and `retention plan` beyond the common ones (docs/cli.md). */
export const COMPLIANCE_EXIT = { noMatch: 4, refused: 6, retentionDiffers: 8, grantsUnread: 8 } as const;

const say = (message: string) => process.stderr.write(`${message}\n`);

export function parseReportFormat(value: string): ReportFormat {
  if (!(REPORT_FORMATS as readonly string[]).includes(value)) throw new UsageError(`--format ${value}: expected one of ${REPORT_FORMATS.join(', ')}`);
  return value as ReportFormat;
}

/**
 * Runs `produce` for a CLI command: output to `--output` (removed again
 * when the report fails) or stdout, progress lines on stderr, the request
 * id and SHA-256 on stderr at the end, exit code 6 when refused.
 */
export async function runProduce(
  request: ProduceRequest,
  output: string | undefined,
  build: (ctx: { client: ProduceDeps['client']; database: string; requestId: string; generatedAt: number; header: [string, string][] }) => Promise<ReportDocument>,
): Promise<ProduceResult> {
  const settings = loadComplianceSettings();
  const { clickhouse } = loadEndpoints();
  // A long report is one long-running query: the request timeout must not cut it.
  const client = createClickHouse(clickhouse, { requestTimeoutMs: 3_600_000 });
  const started = Date.now();
  let lastProgress = started;
  let rowsSoFar = 0;
  const progress = () => {
    if (settings.progressSeconds <= 0) return;
    const now = Date.now();
    if (now - lastProgress < settings.progressSeconds * 1_000) return;
    lastProgress = now;
    const seconds = (now - started) / 1_000;
    say(`${request.command}: ${rowsSoFar} rows in ${seconds.toFixed(0)} s (${rowsSoFar === 0 ? 'waiting for ClickHouse' : `${Math.round(rowsSoFar / seconds)} rows/s`})`);
  };
  const onRow = (rows: number) => {
    rowsSoFar = rows;
    progress();
  };
  // Also while no row arrives (a long query before its first row, or a server that does not answer): never silent.
  const heartbeat = settings.progressSeconds > 0 ? setInterval(progress, settings.progressSeconds * 1_000) : undefined;
  heartbeat?.unref();
  // Written next to --output and renamed onto it once produced: a refused or failed report leaves an existing file as
  // it was. Reports can hold revealed PII: the file is readable by its owner only.
  const partial = output === undefined ? undefined : `${output}.partial-${process.pid}`;
  const out: Writable = partial === undefined ? process.stdout : createWriteStream(partial, { mode: 0o600 });
  let keep = false;
  try {
    const result = await produce(request, async (ctx) => build({ ...ctx, client, database: clickhouse.database }), out, {
      client,
      database: clickhouse.database,
      reportRoles: settings.reportRoles,
      pdfMaxRows: settings.pdfMaxRows,
      onRow,
    }, { endOutput: output !== undefined });
    if (result.outcome === 'refused') {
      say(`${request.command} refused: ${result.reason} (request ${result.requestId} recorded)`);
      process.exitCode = COMPLIANCE_EXIT.refused;
    } else {
      if (partial !== undefined) await rename(partial, output!);
      keep = true;
      const w = result.written;
      say(
        `${request.command}: ${w.rows} rows${w.shownRows < w.rows ? ` (the PDF table shows ${w.shownRows})` : ''}, ${w.bytes} bytes in ${((Date.now() - started) / 1_000).toFixed(1)} s; sha256 ${w.sha256} recorded for request ${result.requestId}`,
      );
    }
    return result;
  } finally {
    clearInterval(heartbeat);
    if (partial !== undefined && !keep) {
      out.destroy();
      await rm(partial, { force: true });
    }
    await client.close();
  }
}
