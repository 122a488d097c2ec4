import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SERVICES } from '../../cli/commands/run.js';
import { assetPath, packageRoot } from '../../core/paths.js';

// docker-compose.yml checked by compose-go, the library `docker compose config` is built on
// (infra/docker/compose-check): the Compose specification's schema, merge keys, interpolation
// and references between services, networks and volumes. No Docker engine is needed, so this
// runs where compose itself cannot (docs/docker.md). Building the checker needs Go and the Go
// module proxy.

interface NormalizedService {
  build?: { context?: string; dockerfile?: string };
  command?: string[];
  depends_on?: Record<string, { condition?: string }>;
  healthcheck?: { test?: string[] };
  volumes?: { type?: string; source?: string; target?: string }[];
}

const workdir = mkdtempSync(path.join(os.tmpdir(), 'auditline-compose-check-'));
const checker = path.join(workdir, 'compose-check');

function buildChecker(): void {
  const built = spawnSync('go', ['build', '-o', checker, '.'], { cwd: assetPath('infra', 'docker', 'compose-check'), encoding: 'utf8', timeout: 300_000 });
  if (built.error) throw new Error(`cannot run go (needed to build infra/docker/compose-check): ${built.error.message}`);
  assert.equal(built.status, 0, `go build of infra/docker/compose-check failed:\n${built.stderr}`);
}

function check(file: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(checker, [file], { encoding: 'utf8', timeout: 60_000, env: { PATH: process.env.PATH ?? '' } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('docker-compose.yml is a valid Compose project, and an invalid copy is refused with the reason', { timeout: 420_000 }, async (t) => {
  buildChecker();
  t.after(() => rmSync(workdir, { recursive: true, force: true }));

  const ok = check(assetPath('docker-compose.yml'));
  assert.equal(ok.status, 0, `compose-check refused docker-compose.yml:\n${ok.stderr}`);
  const project = JSON.parse(ok.stdout) as { services: Record<string, NormalizedService> };
  const root = packageRoot;

  for (const name of Object.keys(SERVICES)) {
    const s = project.services[name];
    assert.ok(s, `no compose service ${name}`);
    assert.equal(s.build?.context, root, `${name} is built from the project root`);
    assert.deepEqual(s.command, ['run', name]);
    assert.equal(s.depends_on?.setup?.condition, 'service_completed_successfully', `${name} starts after setup`);
    assert.ok(s.healthcheck?.test?.some((part) => part.endsWith('/readyz')), `${name} is healthy when /readyz says so`);
  }
  // Bind mounts of the project's own files must point at files that exist (compose only finds out at `up`).
  const binds = Object.entries(project.services).flatMap(([name, s]) => (s.volumes ?? []).filter((v) => v.type === 'bind').map((v) => ({ name, source: v.source! })));
  assert.ok(binds.length >= 3, `prometheus and grafana mount their configuration (${binds.length} bind mounts)`);
  for (const b of binds) assert.ok(existsSync(b.source), `${b.name} mounts ${b.source}, which does not exist`);

  // The checker can fail: a dependency on a service that does not exist, and a value of the wrong type.
  const text = readFileSync(assetPath('docker-compose.yml'), 'utf8');
  const unknownDependency = text.replace(/\n {2}tokenizer:\n/, '\n  tokenizer:\n    links: ["no-such-service"]\n');
  assert.notEqual(unknownDependency, text);
  const wrongType = text.replace(/\n {2}hotstore:\n/, '\n  hotstore:\n    stop_signal: [1, 2]\n');
  assert.notEqual(wrongType, text);
  for (const [label, broken, expected] of [
    ['unknown service', unknownDependency, /no-such-service/],
    ['wrong type', wrongType, /stop_signal/],
  ] as const) {
    const file = path.join(workdir, `${label.replace(' ', '-')}.yml`);
    writeFileSync(file, broken);
    const r = check(file);
    assert.equal(r.status, 1, `${label}: expected exit 1, got ${r.status}\n${r.stdout.slice(0, 200)}`);
    assert.match(r.stderr, expected, `${label}: the reason names it`);
  }
});
