import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { assetPath } from '../../core/paths.js';
import { LOCAL_DEFAULTS } from '../../core/endpoints.js';

interface Service {
  image?: string;
  ports?: unknown[];
  environment?: Record<string, unknown> | string[];
  healthcheck?: { test?: unknown };
  command?: unknown;
  entrypoint?: unknown;
}

const compose = parse(readFileSync(assetPath('docker-compose.yml'), 'utf8')) as {
  services?: Record<string, Service>;
  [key: string]: unknown;
};
const services = compose.services ?? {};

function service(name: string): Service {
  const s = services[name];
  assert.ok(s, `docker-compose.yml has no service "${name}"`);
  return s;
}

/** Host port of a short-syntax mapping: "9092:9092", "127.0.0.1:9092:9092", "9092:9092/tcp". */
function hostPort(mapping: unknown): number | undefined {
  if (typeof mapping === 'object' && mapping !== null && 'published' in mapping) {
    return Number((mapping as { published: unknown }).published);
  }
  const parts = String(mapping).replace(/\/(tcp|udp)$/, '').split(':');
  if (parts.length < 2) return undefined; // container port only: nothing published on a fixed host port
  return Number(parts[parts.length - 2]);
}

function publishedPorts(name: string): number[] {
  return (service(name).ports ?? []).map(hostPort).filter((p): p is number => p !== undefined);
}

function env(name: string): Record<string, string> {
  const e = service(name).environment ?? {};
  if (Array.isArray(e)) {
    return Object.fromEntries(e.map((kv) => [kv.split('=')[0] ?? '', kv.split('=').slice(1).join('=')]));
  }
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, v == null ? '' : String(v)]));
}

function commandText(name: string): string {
  const s = service(name);
  return [s.entrypoint, s.command].flat().filter((x) => x != null).join(' ');
}

const portOf = (hostPortOrUrl: string): number => {
  const url = new URL(hostPortOrUrl.includes('://') ? hostPortOrUrl : `tcp://${hostPortOrUrl}`);
  return Number(url.port);
};

test('hostPort parses both short forms', () => {
  assert.equal(hostPort('9092:9092'), 9092);
  assert.equal(hostPort('127.0.0.1:8081:8080'), 8081);
  assert.equal(hostPort('9000:9000/tcp'), 9000);
  assert.equal(hostPort('8080'), undefined);
  assert.equal(hostPort({ target: 8080, published: '8081' }), 8081);
});

test('the four services and the init job exist, each of the four with a healthcheck', () => {
  for (const name of ['kafka', 'schema-registry', 'clickhouse', 'minio']) {
    assert.ok(service(name).healthcheck?.test, `${name} has no healthcheck test`);
  }
  service('minio-init');
});

test('published host ports match the launcher defaults (LOCAL_DEFAULTS)', () => {
  const expected: Record<string, string> = {
    kafka: LOCAL_DEFAULTS.kafkaBrokers,
    'schema-registry': LOCAL_DEFAULTS.registryUrl,
    clickhouse: LOCAL_DEFAULTS.clickhouseUrl,
    minio: LOCAL_DEFAULTS.s3Endpoint,
  };
  for (const [name, endpoint] of Object.entries(expected)) {
    const port = portOf(endpoint);
    assert.ok(port > 0, `no port in ${endpoint}`);
    assert.ok(publishedPorts(name).includes(port), `${name} must publish host port ${port}, has ${publishedPorts(name).join(', ')}`);
  }
});

test('the registry path is the Apicurio ccompat API', () => {
  assert.match(new URL(LOCAL_DEFAULTS.registryUrl).pathname, /^\/apis\/ccompat\/v7\/?$/);
});

test('MinIO root credentials are the local S3 keys', () => {
  const e = env('minio');
  assert.equal(e.MINIO_ROOT_USER, LOCAL_DEFAULTS.s3AccessKeyId);
  assert.equal(e.MINIO_ROOT_PASSWORD, LOCAL_DEFAULTS.s3SecretAccessKey);
});

test('minio-init creates the archive bucket with Object Lock', () => {
  const cmd = commandText('minio-init');
  assert.match(cmd, /mc mb\b[^;&\n]*--with-lock/);
  assert.match(cmd, /\bauditline-archive\b/);
});

test('kafka runs KRaft combined mode (broker + controller)', () => {
  const roles = (env('kafka').KAFKA_PROCESS_ROLES ?? '').split(',').map((r) => r.trim());
  assert.ok(roles.includes('broker') && roles.includes('controller'), `roles: ${roles.join(',')}`);
});

test('no obsolete top-level version key', () => {
  assert.equal('version' in compose, false);
});
