import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { createLogger } from '../../core/logger.js';
import { assetPath } from '../../core/paths.js';
import { HotstoreService, loadHotstoreConfig } from '../../consumers/hotstore/index.js';
import { TOKENIZED_HEADER } from '../../consumers/tokenizer/index.js';
import { buildExecution, idOf } from '../helpers/hotstore-fixtures.js';
import { archiveToEnd, archiverEnv, createTestArchive, signingKeyPem, type TestArchive } from '../helpers/archiver-stack.js';
import { clickhouse, publish, storedEvents, waitFor } from '../helpers/hotstore-stack.js';

/**
 * The hot store keeps an execution's rows for the operational retention (90 days) but empties its input, outputs,
 * errors and reasons after the PII retention (30 days, column TTLs). The archive keeps them (tokenized) for 7 years:
 * `replay` (auto) must not print an execution with its input and step data gone while the archive holds them.
 */

const run = promisify(execFile);
const client = clickhouse();
const key = signingKeyPem();
const archives: TestArchive[] = [];
const DAY = 86_400_000;

after(async () => {
  for (const a of archives) await a.drop();
  await client.close();
});

test('replay (auto) of an execution past the PII retention rebuilds it from the archive, not from the emptied hot store rows', async () => {
  const a = await createTestArchive(client, 'arch-replay-pii', { partitions: 1, objectLock: false });
  archives.push(a);
  const execution = buildExecution({ workflowId: 'WF-REPLAY-PII', status: 'success', startedAgoMs: 45 * DAY, steps: [{ name: 'charge', status: 'success' }] });
  await publish(a.names.topic, execution, { [TOKENIZED_HEADER]: 'v1' });
  const hs = new HotstoreService(
    loadHotstoreConfig({ ...process.env, AUDITLINE_CLICKHOUSE_DATABASE: a.database, AUDITLINE_HOTSTORE_TOPIC: a.names.topic, AUDITLINE_HOTSTORE_DLQ_TOPIC: a.names.dlq, AUDITLINE_HOTSTORE_GROUP_ID: `${a.names.group}-hs`, AUDITLINE_HOTSTORE_FLUSH_MS: '100' }),
    { logger: createLogger('hotstore-replay-pii', 'silent'), registry: new Registry() },
  );
  try {
    await hs.start(new AbortController().signal);
    await waitFor('hot store loaded', async () => (await storedEvents(client, a.database)) >= execution.length, 30_000);
  } finally {
    await hs.stop();
  }
  const env = { ...process.env, ...archiverEnv({ ...a.names, database: a.database, bucket: a.bucket, signingKey: key.privatePem }, { AUDITLINE_ARCHIVER_OBJECT_LOCK: 'false', AUDITLINE_ARCHIVER_STORAGE_CLASS: 'STANDARD' }) };
  await archiveToEnd(a, env, 'archiver-replay-pii');
  // The column TTLs applied, as a merge does in production.
  for (const table of ['executions', 'steps', 'execution_results']) await client.command({ query: `OPTIMIZE TABLE ${a.database}.${table} FINAL` });
  const rs = await client.query({ query: `SELECT input FROM ${a.database}.executions WHERE execution_id = {id:String}`, query_params: { id: idOf(execution) }, format: 'JSONEachRow' });
  assert.deepEqual(await rs.json(), [{ input: '' }], 'the hot store emptied the input after the PII retention');

  const r = await run(process.execPath, [assetPath('dist', 'cli', 'main.js'), 'replay', idOf(execution)], { env }).then(
    (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { source: string; input: unknown; steps: { output: unknown }[] };
  assert.deepEqual(doc.input, { customer_email: { token: `tok_${idOf(execution).slice(0, 6)}` }, amount: 12000 });
  assert.equal(doc.source, 'archive');
  assert.equal(doc.steps.length, 1);
});
