import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import type { ClickHouseClient } from '@clickhouse/client';
import { Supervisor } from '../../cli/pipeline/supervisor.js';
import { createClickHouse } from '../../core/clients/clickhouse.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { assetPath } from '../../core/paths.js';
import type { VerifyReport } from '../../consumers/archiver/index.js';
import { decisionPath, executionInputs, failedExecutions } from '../../consumers/hotstore/index.js';
import { createAuditProducer } from '../../producers/index.js';
import { Receiver, validSignature } from '../helpers/alerts-fixtures.js';
import { createPipelineEnv, type PipelineEnv } from '../helpers/pipeline-env.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * The whole pipeline as `npm start` runs it (every service its own process
 * under the supervisor) on isolated topics, database and bucket: executions
 * recorded through the producer client come out tokenized in the hot store's
 * three query patterns, are archived and verifiable, the failed one raises
 * the PII alert on a real webhook receiver, and their PII can be revealed by
 * an allowed role only.
 */
const run = promisify(execFile);
const cli = assetPath('dist', 'cli', 'main.js');
const endpoints = loadEndpoints();
const WORKFLOW = `WF-E2E-${Date.now().toString(36)}`;
const EMAIL = 'e2e.canary.7731@example.com';

const WEBHOOK_SECRET = 'e2e-webhook-secret-7f3a9c1d2e';
const receiver = new Receiver();
let pipeline: PipelineEnv;
let supervisor: Supervisor;
let clickhouse: ClickHouseClient;
const ids: { failed?: string; success?: string } = {};

before(async () => {
  await receiver.up();
  pipeline = await createPipelineEnv('e2e', { webhookUrl: `http://127.0.0.1:${receiver.port}`, webhookSecret: WEBHOOK_SECRET });
  supervisor = new Supervisor(pipeline.services, {
    cli,
    logDir: path.join(tempDir('auditline-e2e'), 'logs'),
    env: { ...process.env, ...pipeline.env },
    onChange: () => undefined,
  });
  supervisor.start();
  await supervisor.waitReady(90_000);
  clickhouse = createClickHouse(endpoints.clickhouse);

  const audit = createAuditProducer({ brokers: endpoints.kafka.brokers, schemaRegistryUrl: endpoints.registry.url, service: 'e2e-worker', topic: pipeline.names.raw, spoolDir: false });
  try {
    const failed = await audit.startExecution({
      workflowId: WORKFLOW,
      workflowName: 'Invoice sync',
      trigger: 'webhook',
      triggeredBy: { kind: 'user', id: 'u-42' },
      input: { customer_email: EMAIL, customer_name: 'Erin Canary', amount: 12_000 },
    });
    ids.failed = failed.executionId;
    await failed.step('fetch-invoice', () => ({ amount: 12_000 }), { input: { id: 7 } });
    await failed.decision({ condition: 'amount > 10000', taken: 'manual-approval', reason: 'amount=12000 exceeds 10000', values: { amount: 12_000 } });
    await assert.rejects(
      failed.step('post-to-erp', () => {
        throw new Error(`ERP rejected the invoice for ${EMAIL}`);
      }),
    );
    await failed.finish('failed', { error: new Error(`ERP rejected the invoice for ${EMAIL}`) });

    const ok = await audit.startExecution({ workflowId: WORKFLOW, trigger: 'api', triggeredBy: { kind: 'service', id: 'billing' }, input: { amount: 50 } });
    ids.success = ok.executionId;
    await ok.step('fetch-invoice', () => ({ amount: 50 }));
    await ok.decision({ condition: 'amount > 10000', taken: 'auto-approve', reason: 'amount=50' });
    await ok.step('post-to-erp', () => ({ document: 'D-1' }));
    await ok.decision({ condition: 'erp accepted', taken: 'notify', reason: 'document D-1' });
    await ok.finish('success', { output: { document: 'D-1' } });
  } finally {
    await audit.close();
  }
});

after(async () => {
  await supervisor?.stop();
  await receiver.down();
  await clickhouse?.close();
  await pipeline?.drop();
});

/** Polls until `check` returns a value (not undefined), or fails naming `what`. */
async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('the failed execution is found by the failed-executions query, tokenized', async () => {
  const db = pipeline.names.database;
  const failed = await eventually('the failed execution in the hot store', async () => {
    const rows = await failedExecutions(clickhouse, db, { workflowId: WORKFLOW, sinceSeconds: 3_600, limit: 10 });
    return rows.length > 0 ? rows : undefined;
  });
  assert.deepEqual(failed.map((r) => r.execution_id), [ids.failed]);
  assert.ok(!failed[0]!.error_message.includes(EMAIL), 'the error message in the hot store holds no cleartext e-mail');
  assert.match(failed[0]!.error_message, /ERP rejected the invoice for /);
});

test('inputs of the failed execution are tokenized; decisions come back in order with their steps', async () => {
  const db = pipeline.names.database;
  const inputs = await eventually('all inputs of the failed execution', async () => {
    const rows = await executionInputs(clickhouse, db, ids.failed!);
    return rows.length >= 3 ? rows : undefined;
  });
  assert.deepEqual(inputs.map((r) => [r.source, r.step_name]), [['execution', ''], ['step', 'fetch-invoice'], ['step', 'post-to-erp']]);
  const input = inputs[0]!.input;
  assert.ok(!input.includes(EMAIL) && !input.includes('Erin Canary'), 'no cleartext PII in the stored input');
  assert.match(input, /"customer_email":\{"\$pii":/);
  assert.equal(inputs[0]!.status, 'failed');

  // A decision recorded while its step runs is published before that step's StepFinished, so it can be queryable
  // (without its step name) a moment before the step it joins (docs/hotstore.md, "Write order").
  const decisions = await eventually('both decisions of the successful execution, with their steps', async () => {
    const rows = await decisionPath(clickhouse, db, ids.success!);
    return rows.length >= 2 && rows.every((r) => r.step_name !== '') ? rows : undefined;
  });
  assert.deepEqual(decisions.map((d) => [d.step_name, d.branch_taken]), [['fetch-invoice', 'auto-approve'], ['post-to-erp', 'notify']]);
});

test('an engineer reveals the failed execution\'s inputs; another role is refused, both recorded', async () => {
  const env = { ...process.env, ...pipeline.env };
  const allowed = await run(process.execPath, [cli, 'reveal', ids.failed!, '--as', 'e2e-engineer', '--role', 'engineering', '--reason', 'e2e: reproduce the failure', '--format', 'json'], { env });
  assert.ok(allowed.stdout.includes(EMAIL), 'the engineer sees the cleartext e-mail');
  const refused = await run(process.execPath, [cli, 'reveal', ids.failed!, '--as', 'e2e-marketer', '--role', 'marketing', '--reason', 'e2e: should be refused'], { env }).then(
    () => assert.fail('a marketing reveal must be refused'),
    (err: { code: number; stdout: string; stderr: string }) => err,
  );
  assert.equal(refused.code, 6);
  assert.ok(!refused.stdout.includes(EMAIL) && !refused.stderr.includes(EMAIL));
  const rs = await clickhouse.query({
    query: `SELECT principal, outcome FROM ${pipeline.names.database}.pii_access_log WHERE execution_id = {id:String} ORDER BY at`,
    query_params: { id: ids.failed! },
    format: 'JSONEachRow',
  });
  const log = await rs.json<{ principal: string; outcome: string }>();
  assert.deepEqual(log.map((r) => r.principal), ['e2e-engineer', 'e2e-marketer']);
  assert.notEqual(log[0]!.outcome, log[1]!.outcome);
});

test('the failed execution that touched PII raises the security alert on the webhook, signed, without PII', async () => {
  const request = await eventually('the security alert', async () => receiver.requests.find((r) => r.path === '/security' && r.body.includes(ids.failed!)), 90_000);
  assert.ok(validSignature(request, WEBHOOK_SECRET), 'the request is signed with the channel secret');
  assert.ok(!request.body.includes(EMAIL), 'the alert carries no cleartext PII');
  const alert = JSON.parse(request.body) as { rule?: string };
  assert.equal(alert.rule, 'failed-execution-touched-pii');
  assert.equal(receiver.requests.filter((r) => r.path === '/security').length, 1, 'only the failed execution alerts');
});

test('both executions are archived, indexed, and the archive verifies', async () => {
  const env = { ...process.env, ...pipeline.env };
  // Every event of both executions indexed (an execution may span objects): 5 of the failed one, 6 of the successful one.
  const indexed = await eventually('all events of both executions in the archive index', async () => {
    const rs = await clickhouse.query({
      query: `SELECT execution_id, any(workflow_id) AS workflow_id, sum(events) AS events, groupUniqArray(object_key) AS objects
              FROM ${pipeline.names.database}.archive_index FINAL WHERE execution_id IN {ids:Array(String)} GROUP BY execution_id`,
      query_params: { ids: [ids.failed!, ids.success!] },
      format: 'JSONEachRow',
    });
    const rows = (await rs.json<{ execution_id: string; workflow_id: string; events: number | string; objects: string[] }>()).map((r) => ({ ...r, events: Number(r.events) }));
    return rows.reduce((n, r) => n + r.events, 0) >= 11 ? rows : undefined;
  }, 90_000);
  const byId = (a: (string | number)[], b: (string | number)[]) => (String(a[0]) < String(b[0]) ? -1 : 1);
  assert.deepEqual(
    indexed.map((r) => [r.execution_id, r.workflow_id, r.events]).sort(byId),
    [[ids.failed!, WORKFLOW, 5], [ids.success!, WORKFLOW, 6]].sort(byId),
    'each execution indexed with all its events, once',
  );
  const objects = [...new Set(indexed.flatMap((r) => r.objects))];
  // Digests list objects on their interval (2 s here); verify once one has listed every object that holds these executions.
  let last = '';
  const report = await eventually('a clean archive verify that checked the objects of both executions', async () => {
    const r = await run(process.execPath, [cli, 'archive', 'verify', '--grace', '1', '--format', 'json'], { env }).then(
      (ok) => ({ code: 0, stdout: ok.stdout }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: `${err.stdout}${err.stderr}` }),
    );
    last = r.stdout;
    if (r.code !== 0) return undefined;
    const parsed = JSON.parse(r.stdout) as VerifyReport;
    return objects.some((key) => parsed.pending.includes(key)) ? undefined : parsed;
  }, 60_000).catch((err: Error) => assert.fail(`${err.message}; last verify output: ${last.slice(0, 1500)}`));
  assert.equal(report.ok, true);
  assert.deepEqual(report.problems, []);
  assert.ok(report.digests >= 1, 'at least one signed digest checked');
  // Not pending and no problem: each object is listed by a digest and matched its SHA-256 and size.
  assert.ok(report.objectsChecked >= objects.length, `${report.objectsChecked} objects checked, ${objects.length} hold these executions`);
  const replay = await run(process.execPath, [cli, 'replay', ids.failed!, '--source', 'archive'], { env });
  const doc = JSON.parse(replay.stdout) as Record<string, unknown>;
  assert.ok(JSON.stringify(doc).includes('post-to-erp'), 'the replay document holds the failed step');
  assert.ok(!replay.stdout.includes(EMAIL), 'replay keeps PII tokenized without --reveal');
});
