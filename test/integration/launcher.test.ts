import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { assetPath } from '../../core/paths.js';
import { loadStackSettings } from '../../infra/local-stack/settings.js';
import { startPrivateClickHouse } from '../helpers/hotstore-private-clickhouse.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);
const cli = assetPath('dist', 'cli', 'main.js');

/** Runs `auditline stack ...` against a private stack directory and ports, never the shared stack. */
async function stack(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, 'stack', ...args], { env: { ...process.env, ...env }, timeout: 240_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function privateStack(s3Port: number, extra: Record<string, string> = {}): Record<string, string> {
  return { AUDITLINE_STACK_DIR: mkdtempSync(path.join(os.tmpdir(), 'auditline-stack-')), AUDITLINE_STACK_S3_PORT: String(s3Port), ...extra };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('up twice starts one process; status shows it; down stops exactly it', async () => {
  const env = privateStack(29400);
  const first = await stack(env, 'up', '--only', 's3');
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /s3: started \(pid (\d+)\)/);
  const pid = Number(/s3: started \(pid (\d+)\)/.exec(first.stderr)![1]);
  assert.ok(alive(pid));

  const second = await stack(env, 'up', '--only', 's3');
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`s3: already running \\(pid ${pid}\\)`));
  assert.doesNotMatch(second.stderr, /started/);

  const status = await stack(env, 'status', '--json');
  const rows = JSON.parse(status.stdout) as { service: string; state: string; pid: number | null; endpoint: string; logFile: string }[];
  const s3 = rows.find((r) => r.service === 's3')!;
  assert.deepEqual([s3.state, s3.pid, s3.endpoint], ['healthy', pid, 'http://127.0.0.1:29400']);
  assert.ok(readFileSync(s3.logFile, 'utf8').length > 0, 'the log file named by status exists and has output');
  assert.equal(rows.find((r) => r.service === 'kafka')!.state, 'stopped');
  assert.equal(status.code, 3, 'status exits 3 while some service is not healthy');

  const down = await stack(env, 'down');
  assert.equal(down.code, 0, down.stderr);
  assert.match(down.stderr, new RegExp(`s3: stopped \\(pid ${pid}\\)`));
  assert.equal(alive(pid), false, 'the started process is gone');
  const after = JSON.parse((await stack(env, 'status', '--json')).stdout) as { service: string; state: string }[];
  assert.ok(after.every((r) => r.state === 'stopped'));
});

test('a stale pid file is replaced, not trusted', async () => {
  const env = privateStack(29401);
  mkdirSync(path.join(env.AUDITLINE_STACK_DIR!, 'run'), { recursive: true });
  // A pid that cannot belong to a live process of ours.
  writeFileSync(path.join(env.AUDITLINE_STACK_DIR!, 'run', 's3.pid'), JSON.stringify({ pid: 2 ** 22 - 3, startTicks: '1', command: [], logFile: '', startedAt: '' }));
  const up = await stack(env, 'up', '--only', 's3');
  assert.equal(up.code, 0, up.stderr);
  assert.match(up.stderr, /s3: removing stale pid file/);
  assert.match(up.stderr, /s3: started/);
  await stack(env, 'down');
});

test('a port taken by a foreign process is refused, naming the service and port', async () => {
  const server = net.createServer().listen(29402, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const up = await stack(privateStack(29402), 'up', '--only', 's3');
    assert.equal(up.code, 1);
    assert.match(up.stderr, /STACK_PORT_IN_USE: s3: port 29402 is already in use by a process this stack did not start/);
  } finally {
    server.close();
  }
});

test('a service that dies during start is named, with the tail of its log', async () => {
  // A JVM heap too small to boot: Kafka exits at once.
  const env = privateStack(29403, { AUDITLINE_STACK_KAFKA_PORT: '29492', AUDITLINE_STACK_KAFKA_CONTROLLER_PORT: '29493', AUDITLINE_STACK_KAFKA_HEAP: '1m' });
  const up = await stack(env, 'up', '--only', 'kafka');
  assert.equal(up.code, 1);
  assert.match(up.stderr, /STACK_START_FAILED: kafka: process \d+ exited during start \(exit code 1\)\. Last lines of .*kafka\.log:/);
  assert.match(up.stderr, new RegExp(`delete ${loadStackSettings({}).cacheDir}/kafka-3\\.9\\.1 and run`), 'names the cache folder to delete');
  assert.match(up.stderr, /heap/i, 'the JVM reason from the log is shown');
  const status = JSON.parse((await stack(env, 'status', '--json')).stdout) as { service: string; state: string }[];
  assert.equal(status.find((r) => r.service === 'kafka')!.state, 'stopped');
});

test('clickhouse starts with the generated users file: default unchanged, the Auditline users log in with the configured passwords', async () => {
  const writerPassword = `w-${Date.now().toString(36)}`;
  const ch = await startPrivateClickHouse({ AUDITLINE_STACK_CLICKHOUSE_WRITER_PASSWORD: writerPassword });
  try {
    const dir = path.join(ch.stackDir, 'clickhouse');
    const usersXml = readFileSync(path.join(dir, 'users.xml'), 'utf8');
    assert.match(readFileSync(path.join(dir, 'config.xml'), 'utf8'), new RegExp(`<users_config>${path.join(dir, 'users.xml')}</users_config>`));
    assert.ok(!usersXml.includes(writerPassword), 'passwords are stored hashed');
    assert.equal(statSync(path.join(dir, 'users.xml')).mode & 0o077, 0, 'users.xml is readable by its owner only');
    const { command } = JSON.parse(readFileSync(path.join(ch.stackDir, 'run', 'clickhouse.pid'), 'utf8')) as { command: string[] };
    assert.ok(command.includes(`--config-file=${path.join(dir, 'config.xml')}`), 'the launcher passes the config file');

    const ask = async (user: string, password: string, query: string) => {
      const res = await fetch(`${ch.url}/?query=${encodeURIComponent(query)}`, { headers: { 'X-ClickHouse-User': user, 'X-ClickHouse-Key': password } });
      return { status: res.status, body: (await res.text()).trim() };
    };
    assert.deepEqual(await ask('default', '', 'SELECT currentUser()'), { status: 200, body: 'default' });
    const defaultGrants = await ask('default', '', 'SHOW GRANTS');
    assert.match(defaultGrants.body, /GRANT .*\bCREATE\b.*\bDROP\b.* ON \*\.\* TO default/);
    assert.match(defaultGrants.body, /NAMED COLLECTION ON \* TO default/);
    const passwords = loadStackSettings({ ...process.env, ...ch.env }).clickhouse.passwords;
    assert.equal(passwords.writer, writerPassword);
    assert.deepEqual(await ask('auditline_writer', writerPassword, 'SELECT currentUser()'), { status: 200, body: 'auditline_writer' });
    const other = await ask('auditline_writer', loadStackSettings({}).clickhouse.passwords.writer, 'SELECT 1');
    assert.match(other.body, /AUTHENTICATION_FAILED/, 'the default writer password is replaced by the setting');
    assert.deepEqual(await ask('auditline_operational', passwords.operational, 'SELECT currentUser()'), { status: 200, body: 'auditline_operational' });
    assert.deepEqual(await ask('auditline_compliance', passwords.compliance, 'SELECT currentUser()'), { status: 200, body: 'auditline_compliance' });
  } finally {
    const down = await ch.stop();
    assert.match(down, /clickhouse: stopped \(pid \d+\)/);
  }
});

/** A cache directory of the test's own that reuses the machine's downloads (symlinks), so the shared cache's files are never written. */
function privateCache(): string {
  const shared = loadStackSettings({}).cacheDir;
  const cache = tempDir('auditline-cache');
  for (const entry of readdirSync(shared)) {
    if (lstatSync(path.join(shared, entry)).isDirectory() && !entry.includes('.partial-')) symlinkSync(path.join(shared, entry), path.join(cache, entry));
  }
  return cache;
}

test('a private stack (ports of its own) leaves the machine\'s active-stack record alone on up and down', async () => {
  const cache = privateCache();
  const record = path.join(cache, 'active-stack.json');
  const shared = `${JSON.stringify({ stackDir: '/elsewhere/.auditline/stack', ports: { kafka: 9092, kafkaController: 9093, registry: 8081, clickhouse: 8123, s3: 9000 } })}\n`;
  writeFileSync(record, shared);
  const env = privateStack(29404, { AUDITLINE_CACHE_DIR: cache });
  try {
    const up = await stack(env, 'up', '--only', 's3');
    assert.equal(up.code, 0, up.stderr);
    assert.equal(readFileSync(record, 'utf8'), shared, 'up did not replace the record');
  } finally {
    const down = await stack(env, 'down');
    assert.equal(down.code, 0, down.stderr);
  }
  assert.equal(readFileSync(record, 'utf8'), shared, 'down did not remove the record');
});

test('npm test\'s session (scripts/lib.mjs) stops only the services its `up` started; one running before stays up', async () => {
  const env = privateStack(29405, { AUDITLINE_CACHE_DIR: privateCache(), AUDITLINE_STACK_CLICKHOUSE_PORT: '29615' });
  const before = await stack(env, 'up', '--only', 's3', '--json');
  assert.equal(before.code, 0, before.stderr);
  const first = JSON.parse(before.stdout) as { stackDir: string; started: string[]; services: { service: string; pid: number }[] };
  assert.deepEqual(first.started, ['s3']);
  assert.equal(first.stackDir, env.AUDITLINE_STACK_DIR);
  const s3Pid = first.services.find((r) => r.service === 's3')!.pid;
  try {
    const lib = assetPath('scripts', 'lib.mjs');
    const script = `import { localStackDown, localStackUp } from ${JSON.stringify(lib)};
      const session = localStackUp({ only: ['s3', 'clickhouse'] });
      console.log(JSON.stringify(session));
      process.exitCode = localStackDown(session);`;
    const { stdout, stderr } = await run(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, ...env }, timeout: 240_000 });
    const session = JSON.parse(stdout.trim()) as { ok: boolean; stackDir: string; started: string[] };
    assert.deepEqual([session.ok, session.started], [true, ['clickhouse']], stderr);
    assert.match(stderr, new RegExp(`stack directory: ${env.AUDITLINE_STACK_DIR}\\n(.*\\n)*clickhouse: stopped \\(pid \\d+\\)`), 'down names its directory and stops what up started');
    assert.doesNotMatch(stderr, /s3: stopped/);
    assert.ok(alive(s3Pid), 's3, running before, still runs');
    const rows = JSON.parse((await stack(env, 'status', '--json')).stdout) as { service: string; state: string }[];
    assert.deepEqual(
      rows.filter((r) => r.service === 's3' || r.service === 'clickhouse').map((r) => [r.service, r.state]),
      [['clickhouse', 'stopped'], ['s3', 'healthy']],
    );
    const none = await stack(env, 'down', '--only', '');
    assert.notEqual(none.code, 0, 'an empty --only list is refused, never read as every service');
    assert.ok(alive(s3Pid));
  } finally {
    await stack(env, 'down');
  }
});

test('a missing executable fails that service with its path and the cache folder to delete, not an unhandled error event', async () => {
  const cache = tempDir('auditline-cache');
  const moto = path.join(cache, `moto-${loadStackSettings({}).s3.motoVersion}`);
  mkdirSync(moto); // marked complete, but its virtualenv is gone
  writeFileSync(path.join(moto, '.complete'), 'x');
  const env = privateStack(29406, { AUDITLINE_CACHE_DIR: cache });
  const up = await stack(env, 'up', '--only', 's3');
  assert.equal(up.code, 1, up.stderr);
  assert.doesNotMatch(up.stderr, /Unhandled 'error' event/);
  assert.match(up.stderr, new RegExp(`STACK_START_FAILED: s3: could not start: cannot run ${path.join(moto, 'venv', 'bin', 'moto_server')}: .*ENOENT.*delete that folder`));
  assert.match(up.stderr, new RegExp(`moto install in ${moto} is incomplete`));
  const rows = JSON.parse((await stack(env, 'status', '--json')).stdout) as { service: string; state: string; stalePid?: number }[];
  const s3 = rows.find((r) => r.service === 's3')!;
  assert.deepEqual([s3.state, s3.stalePid], ['stopped', undefined], 'stopped, and no pid file was written');
});

test('two concurrent `stack up` on one stack directory start each service once', async () => {
  const env = privateStack(29408, { AUDITLINE_CACHE_DIR: privateCache() });
  try {
    const [a, b] = await Promise.all([stack(env, 'up', '--only', 's3', '--json'), stack(env, 'up', '--only', 's3', '--json')]);
    assert.deepEqual([a.code, b.code], [0, 0], a.stderr + b.stderr);
    const started = [a, b].map((r) => (JSON.parse(r.stdout) as { started: string[] }).started);
    assert.deepEqual(started.flat(), ['s3'], `exactly one of them started s3: ${JSON.stringify(started)}`);
    assert.match(a.stderr + b.stderr, /waiting for another `stack up`[\s\S]*s3: already running/);
    const listeners = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
      try {
        return readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0').includes('29408');
      } catch {
        return false;
      }
    });
    assert.equal(listeners.length, 1, 'one moto process for the port');
  } finally {
    await stack(env, 'down');
  }
});
