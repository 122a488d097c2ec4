import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { SERVICES } from '../../cli/commands/run.js';
import { assetPath, packageRoot } from '../../core/paths.js';
import { LOCAL_DEFAULTS, loadEndpoints } from '../../core/endpoints.js';
import { loadServiceRuntimeSettings } from '../../core/service/index.js';
import { exposedMetricNames, expandAlternations, promqlMetricNames, serviceConfigLoader, serviceDefaults } from '../helpers/service-metrics.js';

interface Service {
  image?: string;
  build?: string | { context?: string };
  ports?: unknown[];
  environment?: Record<string, unknown> | string[];
  healthcheck?: { test?: unknown };
  command?: unknown;
  entrypoint?: unknown;
  depends_on?: string[] | Record<string, { condition?: string }>;
  restart?: string;
  stop_grace_period?: string;
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  networks?: string[] | Record<string, unknown>;
}

// Compose resolves YAML merge keys (`<<: *anchor`); so must the test.
const compose = parse(readFileSync(assetPath('docker-compose.yml'), 'utf8'), { merge: true }) as {
  services?: Record<string, Service>;
  networks?: Record<string, { internal?: boolean; ipam?: { config?: { subnet?: string }[] } }>;
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

// ---------------------------------------------------------------------------
// The pipeline: setup, the consumer services, Prometheus and Grafana.

/** The consumer services compose runs, with the metrics ports the issue gives (checked against the code's defaults). */
const CONSUMERS: Record<string, number> = { hotstore: 9464, tokenizer: 9465, archiver: 9466, alerts: 9467 };

/** Where the project's image puts the package (Dockerfile WORKDIR). */
const IMAGE_ROOT = '/app';

function readYaml<T>(...segments: string[]): T {
  return parse(readFileSync(assetPath(...segments), 'utf8')) as T;
}

function dependsOn(name: string): Record<string, string> {
  const d = service(name).depends_on ?? {};
  return Array.isArray(d) ? Object.fromEntries(d.map((n) => [n, 'service_started'])) : Object.fromEntries(Object.entries(d).map(([k, v]) => [k, v.condition ?? 'service_started']));
}

/** Bind mounts of a service: host path (absolute) -> container path. */
function bindMounts(name: string): { source: string; target: string }[] {
  return (service(name).volumes ?? []).flatMap((v) => {
    const [source, target] = typeof v === 'string' ? v.split(':') : [v.source, v.target];
    if (!source || !target || !/^[./]/.test(source)) return []; // named volume
    return [{ source: path.resolve(packageRoot, source), target }];
  });
}

/** The container path as seen from this checkout, through the service's bind mounts (or the image's /app). */
function hostPathOf(name: string, containerPath: string): string | undefined {
  for (const m of bindMounts(name)) {
    if (containerPath === m.target || containerPath.startsWith(`${m.target}/`)) return path.join(m.source, containerPath.slice(m.target.length));
  }
  if (containerPath.startsWith(`${IMAGE_ROOT}/`)) return path.join(packageRoot, containerPath.slice(IMAGE_ROOT.length + 1));
  return undefined;
}

/** A service's environment with container paths translated to this checkout, for the code's config loaders. */
function hostEnv(name: string): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env(name)).map(([k, v]) => [k, v.startsWith('/') ? (hostPathOf(name, v) ?? v) : v]));
}

function networksOf(name: string): string[] {
  const n = service(name).networks;
  if (!n) return ['default'];
  return Array.isArray(n) ? n : Object.keys(n);
}

function seconds(duration: string | undefined): number {
  const m = /^(\d+)(ms|s|m)?$/.exec(duration ?? '');
  assert.ok(m, `not a duration: ${duration}`);
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 } as Record<string, number>)[m[2] ?? 's']!;
}

test('setup runs `auditline setup` once, after Kafka, the registry and ClickHouse are healthy and the bucket exists', () => {
  assert.deepEqual(service('setup').command, ['setup']);
  assert.deepEqual(dependsOn('setup'), {
    kafka: 'service_healthy',
    'schema-registry': 'service_healthy',
    clickhouse: 'service_healthy',
    'minio-init': 'service_completed_successfully',
  });
  assert.equal(service('setup').restart, 'no');
  const build = service('setup').build;
  assert.equal(typeof build === 'string' ? build : build?.context, '.', 'setup is built from this project (Dockerfile)');
});

test('every `auditline run` service of the code has a compose service, and every compose consumer is one the issue names', () => {
  for (const name of Object.keys(SERVICES)) assert.ok(name in CONSUMERS, `auditline run ${name} has no entry in docker-compose.yml (and this test)`);
  for (const name of Object.keys(CONSUMERS)) service(name);
});

test('each consumer service: the project image, `run <service>`, after setup, restarted, a /readyz healthcheck on its metrics port, time to shut down gracefully', () => {
  const image = service('setup').image;
  assert.ok(image, 'setup names the image it builds');
  for (const [name, port] of Object.entries(CONSUMERS)) {
    const s = service(name);
    assert.equal(s.image, image, `${name} runs the project image`);
    assert.deepEqual(s.command, ['run', name], `${name} command`);
    assert.equal(s.entrypoint, undefined, `${name} keeps the image entrypoint (node dist/cli/main.js)`);
    assert.equal(dependsOn(name).setup, 'service_completed_successfully', `${name} waits for setup`);
    assert.ok(['unless-stopped', 'always', 'on-failure'].includes(s.restart ?? ''), `${name} restart policy: ${s.restart}`);
    const probe = [s.healthcheck?.test].flat().join(' ');
    assert.ok(probe.includes(`http://127.0.0.1:${port}/readyz`), `${name} healthcheck probes /readyz on ${port}: ${probe}`);
    assert.equal(env(name)[`AUDITLINE_${name.toUpperCase()}_METRICS_PORT`], String(port), `${name} metrics port`);
    assert.ok(publishedPorts(name).includes(port), `${name} publishes ${port} on 127.0.0.1`);
    const shutdown = loadServiceRuntimeSettings(name, { groupId: 'g', sourceTopic: 't', dlqTopic: 'd', fromBeginning: true, batchSize: 1, flushMs: 10, metricsPort: port }, env(name)).shutdownTimeoutMs;
    assert.ok(seconds(s.stop_grace_period) * 1000 > shutdown, `${name}: stop_grace_period ${s.stop_grace_period} must exceed the ${shutdown} ms graceful shutdown`);
  }
});

test('the healthcheck script the containers run is in the image', () => {
  for (const name of [...Object.keys(CONSUMERS), 'webhook-sink']) {
    const script = [service(name).healthcheck?.test].flat().find((a): a is string => typeof a === 'string' && a.startsWith(`${IMAGE_ROOT}/`));
    assert.ok(script, `${name} healthcheck runs a script from the image`);
    assert.ok(existsSync(hostPathOf(name, script)!), `${script} exists in this checkout`);
  }
});

test('metrics ports and listen address: the code\'s defaults and 0.0.0.0 inside the container', async () => {
  for (const [name, port] of Object.entries(CONSUMERS)) {
    const defaults = await serviceDefaults(name);
    assert.equal(defaults.metricsPort, port, `${name}: the code's default metrics port`);
    const settings = loadServiceRuntimeSettings(name, defaults, env(name));
    assert.equal(settings.http.host, '0.0.0.0', `${name} must listen on all interfaces inside its container`);
    assert.equal(settings.http.port, port);
  }
});

test('the services reach Kafka, the registry, ClickHouse and MinIO by their in-network names and ports', () => {
  const internalKafka = /INTERNAL:\/\/([^,:]+):(\d+)/.exec(env('kafka').KAFKA_ADVERTISED_LISTENERS ?? '');
  assert.ok(internalKafka, 'kafka advertises an INTERNAL listener');
  for (const name of ['setup', ...Object.keys(CONSUMERS)]) {
    const e = loadEndpoints(env(name));
    assert.equal(e.usesLocalStack, false, `${name} must not try to start the local stack`);
    assert.deepEqual(e.kafka.brokers, [`${internalKafka[1]}:${internalKafka[2]}`], `${name} Kafka`);
    assert.equal(new URL(e.registry.url).host, 'schema-registry:8080', `${name} registry (container port 8080)`);
    assert.equal(new URL(e.registry.url).pathname.replace(/\/$/, ''), new URL(LOCAL_DEFAULTS.registryUrl).pathname, `${name} registry path`);
    assert.equal(new URL(e.clickhouse.url).host, 'clickhouse:8123', `${name} ClickHouse`);
    assert.equal(e.clickhouse.database, env('clickhouse').CLICKHOUSE_DB, `${name} ClickHouse database`);
    assert.equal(e.s3.endpoint, 'http://minio:9000', `${name} S3`);
    assert.deepEqual(e.s3.credentials, { accessKeyId: env('minio').MINIO_ROOT_USER, secretAccessKey: env('minio').MINIO_ROOT_PASSWORD }, `${name} S3 keys`);
    assert.equal(e.s3.bucket, 'auditline-archive', `${name} bucket (minio-init creates it)`);
  }
});

test('each consumer\'s whole configuration passes its own validation (keys, storage class, rules file...)', async () => {
  for (const name of Object.keys(CONSUMERS)) {
    const load = await serviceConfigLoader(name);
    assert.doesNotThrow(() => load(hostEnv(name)), `${name}: the compose settings are valid`);
  }
  assert.equal(env('archiver').AUDITLINE_ARCHIVER_STORAGE_CLASS, 'STANDARD', 'MinIO accepts only STANDARD');
  assert.match(env('tokenizer').AUDITLINE_TOKENIZER_MASTER_KEY ?? '', /\S/);
  assert.match(env('tokenizer').AUDITLINE_TOKENIZER_TOKEN_KEY ?? '', /\S/);
});

test('the local-only keys are marked as such in the file', () => {
  const text = readFileSync(assetPath('docker-compose.yml'), 'utf8');
  for (const variable of ['AUDITLINE_TOKENIZER_MASTER_KEY', 'AUDITLINE_ARCHIVER_SIGNING_KEY', 'AUDITLINE_ALERTS_SECURITY_WEBHOOK_SECRET', 'GF_SECURITY_ADMIN_PASSWORD']) {
    const at = text.indexOf(`${variable}:`);
    assert.ok(at > 0, `${variable} is set`);
    assert.match(text.slice(Math.max(0, at - 600), at), /LOCAL-ONLY/, `${variable} is preceded by a LOCAL-ONLY comment`);
  }
});

test('alerts: rules and channels from the mounted infra/alerts, webhooks to the sink on its own network and nothing else allowed', () => {
  const rulesFile = env('alerts').AUDITLINE_ALERTS_RULES_FILE ?? '';
  assert.equal(path.relative(packageRoot, hostPathOf('alerts', rulesFile) ?? ''), path.join('infra', 'alerts', 'rules.yaml'), 'the rules file is infra/alerts/rules.yaml, mounted');
  assert.ok(existsSync(assetPath('infra', 'alerts', 'rules.yaml')), 'infra/alerts/rules.yaml exists');
  const subnet = compose.networks?.['alerts-sink']?.ipam?.config?.[0]?.subnet;
  assert.equal(env('alerts').AUDITLINE_ALERTS_ALLOWED_TARGETS, subnet, 'exactly the sink network may be called');
  assert.equal(compose.networks?.['alerts-sink']?.internal, true);
  assert.deepEqual(networksOf('webhook-sink'), ['alerts-sink'], 'the sink is reachable from nowhere else');
  assert.ok(networksOf('alerts').includes('alerts-sink') && networksOf('alerts').includes('default'));
  for (const channel of ['security', 'compliance']) {
    const upper = channel.toUpperCase();
    assert.equal(new URL(env('alerts')[`AUDITLINE_ALERTS_${upper}_WEBHOOK_URL`] ?? '').host, `webhook-sink:${env('webhook-sink').WEBHOOK_SINK_PORT}`);
    assert.equal(env('webhook-sink')[`WEBHOOK_SINK_SECRET_${upper}`], env('alerts')[`AUDITLINE_ALERTS_${upper}_WEBHOOK_SECRET`], `${channel}: the sink checks signatures with the same secret`);
  }
});

test('every bind-mounted file or folder exists in the checkout', () => {
  for (const name of Object.keys(services)) {
    for (const m of bindMounts(name)) {
      assert.ok(existsSync(m.source), `${name} mounts ${m.source}, which does not exist`);
    }
  }
});

test('third-party images are pinned to a version', () => {
  for (const [name, s] of Object.entries(services)) {
    if (s.build) continue;
    assert.match(s.image ?? '', /^[a-z0-9./_-]+:(?!latest$)[A-Za-z0-9._-]+$/, `${name}: image ${s.image} must name a version`);
  }
});

test('the Dockerfile: slim Node 20, non-root, `node dist/cli/main.js`, and every asset the code reads at run time', () => {
  const text = readFileSync(assetPath('Dockerfile'), 'utf8');
  assert.match(text, /ARG NODE_IMAGE=node:20[.\d]*-\w+-slim/);
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  assert.match(runtime, /^USER (?!root)\w+/m, 'the runtime stage runs as a non-root user');
  assert.match(runtime, /^WORKDIR \/app$/m);
  assert.match(runtime, /^ENTRYPOINT \["node", "dist\/cli\/main.js"\]$/m);
  const copied = [...runtime.matchAll(/^COPY (?:--from=\w+ )?(\S+) (\S+)$/gm)].map((m) => m[2]!.replace(/^\.\//, '').replace(/\/$/, ''));
  // Every first path segment the code passes to assetPath() (core/paths.ts) must be in the image.
  const sources = readdirSync(packageRoot)
    .filter((d) => !['test', 'bench', 'node_modules', 'dist'].includes(d) && !d.startsWith('.') && statSync(assetPath(d)).isDirectory())
    .flatMap((dir) => tsFiles(assetPath(dir)));
  const assets = new Set(sources.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/assetPath\('([^']+)'/g)].map((m) => m[1]!)));
  assert.ok(assets.has('infra') && assets.has('schemas') && assets.has('package.json'), `assets found: ${[...assets].join(', ')}`);
  for (const asset of assets) assert.ok(copied.some((c) => c === asset || c.startsWith(`${asset}/`)), `the runtime stage must copy ${asset} (copies ${copied.join(', ')})`);
  assert.ok(copied.includes('dist') && copied.includes('node_modules'));
  const ignored = readFileSync(assetPath('.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
  for (const local of ['node_modules', 'dist', '.git', '.auditline']) assert.ok(ignored.includes(local), `.dockerignore leaves out ${local}`);
});

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    if (statSync(p).isDirectory()) return tsFiles(p);
    return p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

// --- Prometheus ---------------------------------------------------------------

interface ScrapeConfig {
  job_name: string;
  static_configs?: { targets: string[] }[];
}
const prometheus = readYaml<{ global?: { scrape_interval?: string }; scrape_configs: ScrapeConfig[] }>('infra', 'prometheus', 'prometheus.yml');
const targets = prometheus.scrape_configs.flatMap((c) => (c.static_configs ?? []).flatMap((s) => s.targets.map((target) => ({ job: c.job_name, target }))));

/** The port Prometheus listens on inside its container (--web.listen-address, default 9090). */
function prometheusPort(): number {
  const flag = [service('prometheus').command].flat().find((a) => String(a).startsWith('--web.listen-address='));
  return flag ? Number(String(flag).split(':').pop()) : 9090;
}

test('Prometheus mounts infra/prometheus/prometheus.yml as its configuration and publishes 9090', () => {
  const config = [service('prometheus').command].flat().find((a) => String(a).startsWith('--config.file='));
  assert.ok(config, 'prometheus names its config file');
  assert.equal(hostPathOf('prometheus', String(config).split('=')[1]!), assetPath('infra', 'prometheus', 'prometheus.yml'));
  assert.ok(publishedPorts('prometheus').includes(9090));
});

test('every target Prometheus scrapes is a compose service listening on that port, and every consumer is scraped under its own name', () => {
  for (const { job, target } of targets) {
    const [host, port] = target.split(':');
    if (host === 'localhost') {
      assert.equal(job, 'prometheus');
      assert.equal(Number(port), prometheusPort(), 'Prometheus scrapes itself on its own port');
      continue;
    }
    assert.ok(host! in services, `${job}: target host ${host} is not a compose service`);
    assert.ok(host! in CONSUMERS, `${job}: ${host} is not a consumer service`);
    assert.equal(env(host!)[`AUDITLINE_${host!.toUpperCase()}_METRICS_PORT`], port, `${job}: ${host} serves /metrics on ${port}`);
    assert.equal(job, host, 'the job is named after the service (the dashboard groups by job)');
    assert.ok(networksOf(host!).includes('default'), `${host} shares the default network with Prometheus`);
  }
  for (const name of Object.keys(CONSUMERS)) assert.ok(targets.some((t) => t.target.startsWith(`${name}:`)), `${name} is not scraped`);
  assert.ok(targets.some((t) => t.job === 'prometheus'), 'Prometheus scrapes itself');
});

// --- Grafana ------------------------------------------------------------------

interface Datasource {
  uid: string;
  type: string;
  url: string;
}
interface Provider {
  type: string;
  options: { path: string };
}
interface Panel {
  title: string;
  type: string;
  datasource?: { uid?: string };
  targets?: { expr?: string; datasource?: { uid?: string } }[];
  panels?: Panel[];
}

function grafanaProvisioning<T>(kind: 'datasources' | 'dashboards', key: string): T[] {
  const mount = bindMounts('grafana').find((m) => m.target === '/etc/grafana/provisioning');
  assert.ok(mount, 'grafana mounts a provisioning folder at /etc/grafana/provisioning');
  const dir = path.join(mount.source, kind);
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  assert.ok(files.length > 0, `no ${kind} provisioning file in ${dir}`);
  return files.flatMap((f) => (parse(readFileSync(path.join(dir, f), 'utf8')) as Record<string, T[]>)[key] ?? []);
}

const datasources = grafanaProvisioning<Datasource>('datasources', 'datasources');
const providers = grafanaProvisioning<Provider>('dashboards', 'providers');
const dashboardFiles = providers.flatMap((p) => {
  const dir = hostPathOf('grafana', p.options.path);
  assert.ok(dir && existsSync(dir), `dashboard provider path ${p.options.path} is not mounted from an existing folder`);
  return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => path.join(dir, f));
});
const dashboards = dashboardFiles.map((f) => ({ file: f, json: JSON.parse(readFileSync(f, 'utf8')) as { uid?: string; title?: string; panels?: Panel[] } }));
const panels = dashboards.flatMap((d) => (d.json.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]));
const expressions = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })));

test('Grafana: pinned image, 3000 published, anonymous read-only access, provisioning from infra/grafana', () => {
  assert.ok(publishedPorts('grafana').includes(3000));
  const e = env('grafana');
  assert.equal(e.GF_AUTH_ANONYMOUS_ENABLED, 'true');
  assert.equal(e.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Viewer', 'anonymous visitors may only look');
  assert.ok(bindMounts('grafana').every((m) => m.source.startsWith(assetPath('infra', 'grafana'))), 'everything Grafana mounts comes from infra/grafana');
  const home = hostPathOf('grafana', e.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? '');
  assert.ok(home && dashboardFiles.includes(home), `the home dashboard ${e.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH} is a provisioned dashboard`);
});

test('the Prometheus datasource points at the compose Prometheus', () => {
  const prom = datasources.filter((d) => d.type === 'prometheus');
  assert.equal(prom.length, 1);
  const url = new URL(prom[0]!.url);
  assert.equal(url.hostname, 'prometheus');
  assert.ok('prometheus' in services);
  assert.equal(Number(url.port), prometheusPort());
});

test('the dashboard JSON parses, has a unique uid, and every panel queries a provisioned datasource', () => {
  assert.ok(dashboards.length >= 1, 'no dashboard provisioned');
  const uids = new Set(datasources.map((d) => d.uid));
  assert.equal(new Set(dashboards.map((d) => d.json.uid)).size, dashboards.length);
  for (const p of panels.filter((p) => p.type !== 'row')) {
    assert.ok(p.targets && p.targets.length > 0, `panel "${p.title}" has no query`);
    for (const ds of [p.datasource, ...p.targets.map((t) => t.datasource)]) assert.ok(ds?.uid && uids.has(ds.uid), `panel "${p.title}": datasource ${ds?.uid} is not provisioned`);
  }
});

test('the dashboard covers throughput, lag, freshness, errors, dead letters and alert deliveries', () => {
  const all = expressions.map((e) => promqlMetricNames(e.expr)).flat();
  for (const metric of ['records_total', 'consumer_lag_records', 'freshness_seconds_bucket', 'retries_total', 'dead_letters_total']) {
    for (const name of Object.keys(CONSUMERS)) assert.ok(all.includes(`auditline_${name}_${metric}`), `no panel reads auditline_${name}_${metric}`);
  }
  assert.ok(all.includes('auditline_alerts_deliveries_total'), 'no panel reads alert deliveries');
});

/** Series Prometheus itself adds to every scrape. */
const PROMETHEUS_SERIES = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped', 'scrape_series_added']);

test('every PromQL expression parses and every metric it reads is one the services register', async () => {
  const registered = new Map<string, Set<string>>();
  for (const name of Object.keys(CONSUMERS)) registered.set(name, await exposedMetricNames(name));
  for (const { panel, expr } of expressions) {
    let names: string[] = [];
    assert.doesNotThrow(() => (names = promqlMetricNames(expr)), `panel "${panel}": ${expr}`);
    assert.ok(names.length > 0, `panel "${panel}" reads no metric: ${expr}`);
    for (const metric of names) {
      if (PROMETHEUS_SERIES.has(metric)) continue;
      const owner = Object.keys(CONSUMERS).find((s) => metric.startsWith(`auditline_${s}_`));
      assert.ok(owner, `panel "${panel}": ${metric} belongs to no consumer service`);
      assert.ok(registered.get(owner)!.has(metric), `panel "${panel}": ${metric} is not registered by the ${owner} service`);
    }
  }
});

test('the PromQL name extraction handles bare names, __name__ matchers and Grafana variables, and refuses what it cannot check', () => {
  assert.deepEqual(promqlMetricNames('sum by (job) (rate({__name__=~"auditline_(a|b)_x_total", outcome="processed"}[$__rate_interval]))'), ['auditline_a_x_total', 'auditline_b_x_total']);
  assert.deepEqual(promqlMetricNames('time() - auditline_a_last_commit_timestamp_seconds'), ['auditline_a_last_commit_timestamp_seconds']);
  assert.deepEqual(promqlMetricNames('{__name__="up"}'), ['up']);
  assert.deepEqual(expandAlternations('p_(a|b)_(c|d)'), ['p_a_c', 'p_a_d', 'p_b_c', 'p_b_d']);
  assert.throws(() => promqlMetricNames('{__name__=~"auditline_.*"}'), /not a plain alternation/);
  assert.throws(() => promqlMetricNames('sum(rate(x[5m]) by'), /syntax error/);
});
