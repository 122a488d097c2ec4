import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { isAuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadRulesFile, parseChannels, parseRules } from '../../consumers/alerts/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import type { StepFinished } from '../../schemas/index.js';

const rulesOf = (yaml: string, channels = new Set(['security', 'compliance'])) => parseRules(parse(yaml), 'test.yaml', channels);
const refused = (yaml: string, pattern: RegExp, channels?: Set<string>) =>
  assert.throws(
    () => rulesOf(yaml, channels),
    (err: unknown) => isAuditlineError(err, 'CONFIG_INVALID') && pattern.test(err.message),
  );

test('the shipped rule file holds the rules the users asked for and validates', () => {
  const rules = loadRulesFile(assetPath('infra', 'alerts', 'rules.yaml'), new Set(['security', 'compliance']));
  const kinds = new Map(rules.map((r) => [r.name, r]));
  const pii = kinds.get('failed-execution-touched-pii')!;
  assert.equal(pii.kind, 'match');
  assert.ok(pii.kind === 'match' && pii.touchedPii);
  assert.deepEqual(pii.channels, ['security']);
  const wf = kinds.get('wf003-repeated-failures')!;
  assert.ok(wf.kind === 'threshold' && wf.count === 5 && wf.windowMs === 600_000 && wf.key === 'workflow_id');
  assert.ok(rules.some((r) => r.kind === 'absence' && r.start !== undefined));
  assert.ok(rules.some((r) => r.kind === 'absence' && r.start === undefined && r.key === 'producer.service'));
  assert.ok(rules.some((r) => r.kind === 'gap'));
});

test('errors name the rule and the field', () => {
  const head = 'rules:\n  - name: r1\n    severity: high\n    channels: [security]\n';
  refused(`${head}    kind: threshold\n    where: { status: failed }\n    key: workflow_id\n    count: 5\n    window: soon\n`, /rule "r1" \(rules\[0\]\): field window: must be a duration/);
  refused(`${head}    kind: threshold\n    where: { status: failed }\n    key: customer_email\n    count: 5\n    window: 1m\n`, /rule "r1".*field key: must be one of/);
  refused(`${head}    kind: match\n    where: { input: x }\n`, /rule "r1".*field where.input: unknown field/);
  refused(`${head}    kind: match\n    where: { event: ExecutionFinishd }\n`, /rule "r1".*field where.event: "ExecutionFinishd" is not a possible event; use one of ExecutionStarted, StepFinished/);
  refused(`${head}    kind: match\n    where: { status: [failed, failure] }\n`, /rule "r1".*field where.status: "failure" is not a possible status; use one of success, failed, partial/);
  refused(`${head}    kind: match\n    where: { trigger: cron }\n`, /field where.trigger: "cron" is not a possible trigger; use one of webhook, schedule/);
  refused(`${head}    kind: match\n    where: {}\n    colour: red\n`, /rule "r1".*colour/);
  refused(`${head}    kind: sometimes\n`, /rule "r1".*field kind/);
  refused(`${head}    kind: absence\n    within: 5m\n`, /rule "r1".*field key: required/);
  refused(`${head}    kind: absence\n    within: 5m\n    start: { event: ExecutionStarted }\n`, /rule "r1".*field end: start and end go together/);
  // Unquoted numbers and booleans are not the text written: the rule would compare 42 with the workflow id 0042.
  refused(`${head}    kind: match\n    where: { workflow_id: 0042 }\n`, /rule "r1".*field where.workflow_id: must be text: put the value in quotes/);
  refused(`${head}    kind: match\n    where: { step_name: [charge, 1.10] }\n`, /rule "r1".*field where.step_name.1: must be text/);
  assert.deepEqual((rulesOf(`${head}    kind: match\n    where: { workflow_id: "0042" }\n`)[0] as { where: object }).where, { workflow_id: ['0042'] });
  // `where` belongs to silence rules: on a start/end rule it was dropped, and the rule watched every workflow.
  refused(`${head}    kind: absence\n    within: 5m\n    start: { event: ExecutionStarted }\n    end: { event: ExecutionFinished }\n    where: { workflow_id: WF-1 }\n`, /rule "r1".*field where: a start\/end rule tests its events with start and end/);
  refused(`${head}    kind: gap\n    where: { event: StepFinished }\n`, /rule "r1".*field where.event: a gap rule checks all events of an execution; where may only test fields every event of it shares \(workflow_id, producer.service, producer.host\)/);
  refused(`${head}    kind: gap\n    where: { workflow_id: WF-1, step_name: charge }\n`, /rule "r1".*field where.step_name: a gap rule/);
  assert.deepEqual((rulesOf(`${head}    kind: gap\n    where: { workflow_id: WF-1, producer.service: billing, producer.host: h1 }\n`)[0] as { where: object }).where, { workflow_id: ['WF-1'], 'producer.service': ['billing'], 'producer.host': ['h1'] }, 'envelope fields are fine');
  refused('rules:\n  - name: r2\n    kind: match\n    severity: high\n    channels: [pager]\n    where: {}\n', /rule "r2".*field channels.0: channel "pager" is not configured/);
  refused('rules:\n  - name: r3\n    kind: match\n    severity: loud\n    channels: [security]\n    where: {}\n', /rule "r3".*field severity/);
  refused(`${head}    kind: match\n    where: {}\n${head.slice(7)}    kind: match\n    where: {}\n`, /rule "r1" \(rules\[1\]\): field name: another rule has the same name/);
});

test('a rules file that is no valid YAML is refused with the line and column', () => {
  const file = path.join(tempDir('alerts-rules'), 'rules.yaml');
  writeFileSync(file, 'rules:\n  - name: r1\n     kind: match\n');
  assert.throws(() => loadRulesFile(file), (e: unknown) => e instanceof Error && /invalid alert rules in .*rules\.yaml: cannot read or parse the YAML \(\w+ at line 2, column \d+\)/.test(e.message));
});

test('channel files: URLs and secrets come from the environment and are never echoed', () => {
  const doc = parse('channels:\n  sec:\n    url_env: SEC_URL\n    format: slack\n    secret_env: SEC_SECRET\n');
  const ok = parseChannels(doc, 'c.yaml', { SEC_URL: 'https://hooks.example.com/T/secret-path', SEC_SECRET: 'a-long-enough-secret' });
  assert.equal(ok.get('sec')!.format, 'slack');
  assert.throws(() => parseChannels(doc, 'c.yaml', { SEC_URL: 'https://hooks.example.com/x' }), /channel "sec": field secret_env: environment variable SEC_SECRET is not set/);
  assert.throws(
    () => parseChannels(doc, 'c.yaml', { SEC_URL: 'https://hooks.example.com/x', SEC_SECRET: 'short' }),
    (err: unknown) => err instanceof Error && /at least 16/.test(err.message) && !err.message.includes('short'),
  );
  assert.throws(() => parseChannels(parse('channels:\n  sec:\n    url: ftp://x\n    secret_env: S\n'), 'c.yaml', { S: 'a-long-enough-secret' }), /field url: must be http or https/);
});

test('step names and error types reach alert keys with each PII marker reduced to part of its token: no mask, no value, still one key per value', async () => {
  const { eventView, withoutMasks } = await import('../../consumers/alerts/fields.js');
  const { piiExecution } = await import('../helpers/tokenizer-fixtures.js');
  const { unwrapPayload } = await import('../../schemas/index.js');
  const { scanField, sealSlots } = await import('../../consumers/tokenizer/scan.js');
  const { TokenKey, newDataKey } = await import('../../consumers/tokenizer/crypto.js');
  const { createSecretKey } = await import('node:crypto');
  const tokenKey = new TokenKey(Buffer.alloc(32, 5));
  const tokenized = (text: string) => {
    const scan = scanField(text, { piiFields: new Set(), detectors: new Set(['email', 'phone']), keyedValuesProtected: false })!;
    sealSlots(scan.slots, { tokenKey, keyId: 'kA', key: createSecretKey(newDataKey()), executionId: 'e1' });
    return scan.render();
  };
  const [, step] = piiExecution({ status: 'failed' });
  const payload = unwrapPayload(step!.payload).value as StepFinished;
  payload.step_name = tokenized('notify ann@example.com');
  payload.error = { ...payload.error!, type: tokenized('Bounce from ann@example.com') };
  const view = eventView(step!);
  assert.equal(view.step_name, `notify [pii:${tokenKey.token('ann@example.com').slice(0, 8)}]`);
  assert.match(view['error.type']!, /^Bounce from \[pii:[A-Za-z0-9_-]{8}\]$/);
  const ann = withoutMasks(tokenized('notify ann@example.com'));
  const bob = withoutMasks(tokenized('notify bob@example.com'));
  assert.notEqual(ann, bob, 'two values, two keys');
  assert.equal(withoutMasks('charge-card'), 'charge-card');
  // A step name that is JSON: its token objects (mask, ciphertext, key id) go too; one key per value.
  const json = withoutMasks(tokenized('{"step":"notify","phone":5551234567}'));
  assert.equal(json, `{"step":"notify","phone":"[pii:${tokenKey.token(5551234567).slice(0, 8)}]"}`);
});
