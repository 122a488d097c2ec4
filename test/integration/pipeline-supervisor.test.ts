import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { pipelineServices, renderStatus } from '../../cli/commands/pipeline.js';
import { Supervisor, type ServiceStatus } from '../../cli/pipeline/supervisor.js';
import { assetPath } from '../../core/paths.js';
import { freePort } from '../helpers/ports.js';
import { tempDir } from '../helpers/temp-dir.js';

const fakeCli = assetPath('test', 'fixtures', 'pipeline', 'fake-cli.mjs');

test('the supervisor starts each service, restarts one that exits, and stops all with SIGTERM', async () => {
  const dir = tempDir('auditline-supervisor-');
  const ports = { alpha: await freePort(), beta: await freePort() };
  const changes: ServiceStatus[][] = [];
  const supervisor = new Supervisor(
    [
      { name: 'alpha', metricsPort: ports.alpha },
      { name: 'beta', metricsPort: ports.beta },
    ],
    {
      cli: fakeCli,
      logDir: path.join(dir, 'logs'),
      env: { ...process.env, FAKE_PORT_ALPHA: String(ports.alpha), FAKE_PORT_BETA: String(ports.beta), FAKE_CRASH_DIR: dir },
      onChange: (s) => changes.push(s),
      pollMs: 100,
    },
  );
  supervisor.start();
  try {
    // Each fake service exits with code 3 once (after 300 ms) and is restarted after the 1 s backoff:
    // wait for both restarts before waitReady, which would otherwise accept the first, doomed process.
    const deadline = Date.now() + 20_000;
    while (!supervisor.status().every((s) => s.restarts >= 1)) {
      if (Date.now() > deadline) assert.fail(`not every service was restarted within 20 s: ${JSON.stringify(supervisor.status().map((s) => [s.name, s.state, s.restarts, s.lastExit]))}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await supervisor.waitReady(20_000);
    const status = supervisor.status();
    assert.deepEqual(status.map((s) => [s.name, s.state, s.restarts]), [
      ['alpha', 'ready', 1],
      ['beta', 'ready', 1],
    ]);
    assert.ok(status.every((s) => s.lastExit === 'exit 3' && typeof s.pid === 'number'));
    assert.ok(changes.some((c) => c.some((s) => s.state === 'restarting')), 'a restarting state was reported');
    assert.match(renderStatus(status), /^SERVICE\s+STATE\s+PID\s+RESTARTS\s+URL\s+LOG\nalpha\s+ready\s+\d+\s+1\s+http:\/\/127\.0\.0\.1:\d+\/metrics/);
  } finally {
    await supervisor.stop();
  }
  assert.deepEqual(supervisor.status().map((s) => s.state), ['stopped', 'stopped']);
  assert.ok(existsSync(path.join(dir, 'alpha.stopped')) && existsSync(path.join(dir, 'beta.stopped')), 'both stopped gracefully on SIGTERM');
});

test('waitReady names the services that never became ready', async () => {
  const dir = tempDir('auditline-supervisor-');
  const port = await freePort();
  // The fake listens on FAKE_PORT_GAMMA; the supervisor probes another port, so it never looks ready.
  const supervisor = new Supervisor([{ name: 'gamma', metricsPort: await freePort() }], {
    cli: fakeCli,
    logDir: dir,
    env: { ...process.env, FAKE_PORT_GAMMA: String(port) },
    onChange: () => undefined,
    pollMs: 100,
  });
  supervisor.start();
  try {
    await assert.rejects(supervisor.waitReady(1_000), /not ready after 1 s: gamma \(starting; log .*gamma\.log\)/);
  } finally {
    await supervisor.stop();
  }
});

test('a service that exits on an invalid setting (exit 2) is not restarted, and waitReady says so at once', async () => {
  const dir = tempDir('auditline-supervisor-');
  const port = await freePort();
  const supervisor = new Supervisor([{ name: 'delta', metricsPort: port }], {
    cli: fakeCli,
    logDir: dir,
    env: { ...process.env, FAKE_PORT_DELTA: String(port), FAKE_INVALID_DELTA: '1' },
    onChange: () => undefined,
    pollMs: 100,
  });
  supervisor.start();
  try {
    const started = Date.now();
    await assert.rejects(supervisor.waitReady(20_000), /stopped by an invalid setting \(the log says which\): delta \(failed, last exit 2, invalid setting; log .*delta\.log\)/);
    assert.ok(Date.now() - started < 5_000, 'without waiting for the timeout');
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    assert.deepEqual(supervisor.status().map((s) => [s.state, s.restarts]), [['failed', 0]], 'not restarted after the 1 s backoff');
  } finally {
    await supervisor.stop();
  }
});

test('pipelineServices takes the metrics port overrides and refuses unknown services', async () => {
  assert.deepEqual(await pipelineServices('hotstore', { AUDITLINE_HOTSTORE_METRICS_PORT: '19464' }), [{ name: 'hotstore', metricsPort: 19464 }]);
  assert.deepEqual(await pipelineServices('tokenizer', {}), [{ name: 'tokenizer', metricsPort: 9465 }]);
  await assert.rejects(pipelineServices('hotstore,nope', {}), /unknown nope/);
  await assert.rejects(pipelineServices('hotstore', { AUDITLINE_HOTSTORE_METRICS_PORT: 'x' }), /AUDITLINE_HOTSTORE_METRICS_PORT: must be a port number/);
  await assert.rejects(pipelineServices('hotstore', { AUDITLINE_HOTSTORE_METRICS_PORT: '70000' }), /AUDITLINE_HOTSTORE_METRICS_PORT: must be a port number/);
});

test('metrics port 0 (a free one, as `run` takes it): the pipeline picks the port, hands it to the service, probes it and shows it', async () => {
  const [service] = await pipelineServices('hotstore', { AUDITLINE_HOTSTORE_METRICS_PORT: '0', AUDITLINE_HOTSTORE_METRICS_HOST: '127.0.0.1' });
  assert.ok(service && service.metricsPort > 0, 'a real port, not 0');
  assert.deepEqual(service.env, { AUDITLINE_HOTSTORE_METRICS_PORT: String(service.metricsPort) }, 'the service listens where the supervisor probes');
  const dir = tempDir('auditline-supervisor-');
  // The fake service listens on AUDITLINE_HOTSTORE_METRICS_PORT, as `auditline run hotstore` does.
  const supervisor = new Supervisor([service], { cli: fakeCli, logDir: dir, env: { ...process.env, AUDITLINE_HOTSTORE_METRICS_PORT: '0' }, onChange: () => undefined, pollMs: 100 });
  supervisor.start();
  try {
    await supervisor.waitReady(20_000);
    assert.match(renderStatus(supervisor.status()), new RegExp(`\\nhotstore\\s+ready\\s+\\d+\\s+0\\s+http://127\\.0\\.0\\.1:${service.metricsPort}/metrics`));
  } finally {
    await supervisor.stop();
  }
});
