import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createKafka } from '../../core/clients/kafka.js';
import { AuditlineError } from '../../core/errors.js';
import { assetPath } from '../../core/paths.js';
import { localConfigXml, localUsersXml } from '../clickhouse/access-xml.js';
import { clickhouseDir, kafkaDir, motoDir, provisionClickHouse, registryDir, provisionKafka, provisionMoto, provisionRegistry, type Progress } from './provision.js';
import type { ServiceName, StackSettings } from './settings.js';

/** How the launcher provisions, starts and probes one service. */
export interface ServiceDef {
  name: ServiceName;
  /** What clients connect to. */
  endpoint: string;
  /** Ports that must be free before the service starts. */
  ports: number[];
  dependsOn: ServiceName[];
  /** Provisioned through Maven (whose local repository allows one writer at a time). */
  usesMaven: boolean;
  /** Its downloaded files in the cache (delete to download again). */
  cacheFolder: string;
  provision(progress: Progress): Promise<void>;
  /** Writes config, prepares data; returns the command to run and what to do when it cannot be run. */
  prepare(): { command: string; args: string[]; cwd: string; hint: string };
  /** A real request to the service; resolves true when it answers correctly. */
  probe(): Promise<boolean>;
}

export function serviceDir(s: StackSettings, name: ServiceName): string {
  return path.join(s.stackDir, name);
}

export function serviceDefs(s: StackSettings): Record<ServiceName, ServiceDef> {
  return { kafka: kafka(s), registry: registry(s), clickhouse: clickhouse(s), s3: s3(s) };
}

const javaHint = 'set JAVA_HOME or AUDITLINE_STACK_JAVA to a Java 17+ installation';

function kafka(s: StackSettings): ServiceDef {
  const dir = serviceDir(s, 'kafka');
  let libs = '';
  const { port, controllerPort } = s.kafka;
  return {
    name: 'kafka',
    usesMaven: true,
    cacheFolder: kafkaDir(s),
    endpoint: `127.0.0.1:${port}`,
    ports: [port, controllerPort],
    dependsOn: [],
    async provision(progress) {
      libs = await provisionKafka(s, progress);
    },
    prepare() {
      const dataDir = path.join(dir, 'data');
      mkdirSync(dataDir, { recursive: true });
      const props = path.join(dir, 'server.properties');
      writeFileSync(
        props,
        [
          '# Written by `auditline stack up`; edits are overwritten.',
          'process.roles=broker,controller',
          'node.id=1',
          `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
          `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
          `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
          'controller.listener.names=CONTROLLER',
          'inter.broker.listener.name=PLAINTEXT',
          'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
          `log.dirs=${dataDir}`,
          'num.partitions=1',
          'auto.create.topics.enable=false',
          'offsets.topic.replication.factor=1',
          'offsets.topic.num.partitions=10',
          'transaction.state.log.replication.factor=1',
          'transaction.state.log.min.isr=1',
          'transaction.state.log.num.partitions=10',
          'group.initial.rebalance.delay.ms=0',
          'log.retention.check.interval.ms=60000',
          '',
        ].join('\n'),
      );
      writeLoggingConfig(dir);
      const java = javaArgs(s, dir, libs);
      if (!existsSync(path.join(dataDir, 'meta.properties'))) {
        const clusterIdFile = path.join(dir, 'cluster-id');
        let clusterId = existsSync(clusterIdFile) ? readFileSync(clusterIdFile, 'utf8').trim() : '';
        // Storage is not formatted yet, so an unusable id (one an earlier launcher wrote with a leading '-') can still be replaced.
        if (!isUsableClusterId(clusterId)) {
          clusterId = kafkaClusterId();
          writeFileSync(clusterIdFile, clusterId);
        }
        const format = spawnSync(s.java, [...java, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', props], {
          encoding: 'utf8',
        });
        if (format.status !== 0) {
          throw new AuditlineError('STACK_START_FAILED', `kafka: formatting storage in ${dataDir} failed:\n${(format.stderr || format.stdout || String(format.error)).slice(-2000)}`);
        }
      }
      return { command: s.java, args: [`-Xmx${s.kafka.heap}`, `-Xms${s.kafka.heap}`, ...java, 'kafka.Kafka', props], cwd: dir, hint: javaHint };
    },
    async probe() {
      const admin = createKafka({ brokers: [`127.0.0.1:${port}`], clientId: 'auditline-stack-probe', ssl: false }, undefined, {
        connectionTimeout: 1000,
        requestTimeout: 2000,
        retry: { retries: 0 },
      }).admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return cluster.brokers.length > 0 && cluster.controller !== null;
      } catch {
        return false;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
  };
}

function registry(s: StackSettings): ServiceDef {
  const dir = serviceDir(s, 'registry');
  const base = `http://127.0.0.1:${s.registry.port}`;
  let jar = '';
  return {
    name: 'registry',
    usesMaven: true,
    cacheFolder: registryDir(s),
    endpoint: `${base}/apis/ccompat/v7`,
    ports: [s.registry.port],
    dependsOn: ['kafka'],
    async provision(progress) {
      jar = await provisionRegistry(s, progress);
    },
    prepare() {
      mkdirSync(dir, { recursive: true });
      return {
        command: s.java,
        args: [
          `-Xmx${s.registry.heap}`,
          `-Dauditline.stack=${s.stackDir}`,
          `-Dquarkus.http.port=${s.registry.port}`,
          '-Dquarkus.http.host=127.0.0.1',
          // Schemas live in a Kafka topic (kafkasql-journal), like Confluent's _schemas.
          '-Dapicurio.storage.kind=kafkasql',
          `-Dapicurio.kafkasql.bootstrap.servers=127.0.0.1:${s.kafka.port}`,
          '-jar',
          jar,
        ],
        cwd: dir,
        hint: javaHint,
      };
    },
    async probe() {
      const ready = await httpGet(`${base}/health/ready`);
      if (ready?.status !== 200 || !/"status"\s*:\s*"UP"/.test(ready.body)) return false;
      const subjects = await httpGet(`${base}/apis/ccompat/v7/subjects`);
      return subjects?.status === 200 && subjects.body.trim().startsWith('[');
    },
  };
}

function clickhouse(s: StackSettings): ServiceDef {
  const dir = serviceDir(s, 'clickhouse');
  const base = `http://127.0.0.1:${s.clickhouse.port}`;
  let lib = '';
  return {
    name: 'clickhouse',
    usesMaven: false,
    cacheFolder: clickhouseDir(s),
    endpoint: base,
    ports: [s.clickhouse.port],
    dependsOn: [],
    async provision(progress) {
      lib = await provisionClickHouse(s, progress);
    },
    prepare() {
      const dataDir = path.join(dir, 'data');
      // clickhouse-local resolves bare table names in `default` to files of its working directory: keep that directory empty.
      const cwd = path.join(dir, 'cwd');
      mkdirSync(dataDir, { recursive: true });
      mkdirSync(cwd, { recursive: true });
      // Users and grants come from a users file (the local engine has no writable access storage for SQL users).
      const usersXml = path.join(dir, 'users.xml');
      const configXml = path.join(dir, 'config.xml');
      writeFileSync(usersXml, localUsersXml({ database: s.clickhouse.database, passwords: s.clickhouse.passwords }), { mode: 0o600 });
      writeFileSync(configXml, localConfigXml(usersXml), { mode: 0o600 });
      return {
        command: s.python,
        args: [assetPath('infra', 'local-stack', 'clickhouse-launcher.py'), lib, dataDir + '/', String(s.clickhouse.port), `--config-file=${configXml}`],
        cwd,
        hint: 'set AUDITLINE_STACK_PYTHON to a Python 3 interpreter',
      };
    },
    async probe() {
      const ping = await httpGet(`${base}/ping`);
      if (ping?.status !== 200 || ping.body.trim() !== 'Ok.') return false;
      const one = await httpGet(`${base}/?query=${encodeURIComponent('SELECT 1')}`);
      return one?.status === 200 && one.body.trim() === '1';
    },
  };
}

function s3(s: StackSettings): ServiceDef {
  const dir = serviceDir(s, 's3');
  const base = `http://127.0.0.1:${s.s3.port}`;
  let server = '';
  return {
    name: 's3',
    usesMaven: false,
    cacheFolder: motoDir(s),
    endpoint: base,
    ports: [s.s3.port],
    dependsOn: [],
    async provision(progress) {
      server = await provisionMoto(s, progress);
    },
    prepare() {
      mkdirSync(dir, { recursive: true });
      return {
        command: server,
        args: ['-H', '127.0.0.1', '-p', String(s.s3.port)],
        cwd: dir,
        hint: `the moto install in ${motoDir(s)} is incomplete: delete that folder and run \`stack up\` again to download it again`,
      };
    },
    async probe() {
      // ListBuckets: answered by the S3 API itself, not by a health page.
      const res = await httpGet(`${base}/`);
      return res?.status === 200 && res.body.includes('ListAllMyBucketsResult');
    },
  };
}

function javaArgs(s: StackSettings, dir: string, libs: string): string[] {
  return [
    `-Dauditline.stack=${s.stackDir}`,
    `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`,
    `-Dlog4j2.configurationFile=${path.join(dir, 'log4j2.properties')}`,
    `-Dkafka.logs.dir=${path.join(dir, 'logs')}`,
    '-cp',
    `${libs}/*`,
  ];
}

function writeLoggingConfig(dir: string): void {
  writeFileSync(
    path.join(dir, 'log4j.properties'),
    'log4j.rootLogger=INFO, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\nlog4j.logger.kafka.request.logger=WARN\nlog4j.logger.state.change.logger=WARN\n',
  );
  writeFileSync(
    path.join(dir, 'log4j2.properties'),
    'status = warn\nappender.console.type = Console\nappender.console.name = STDOUT\nappender.console.layout.type = PatternLayout\nappender.console.layout.pattern = [%d] %p %m (%c)%n\nrootLogger.level = info\nrootLogger.appenderRef.stdout.ref = STDOUT\n',
  );
}

/**
 * A KRaft cluster id: 16 random bytes in base64url (22 characters), never
 * starting with `-`. `kafka-storage format -t -abc…` takes such an id for an
 * option and fails ("argument --cluster-id/-t: expected one argument"), which
 * 1 fresh stack in 64 hit; Kafka's own Uuid.randomUuid() draws again in
 * that case too.
 */
export function kafkaClusterId(): string {
  for (;;) {
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex').toString('base64url');
    if (isUsableClusterId(id)) return id;
  }
}

/** True for a cluster id `kafka-storage format -t` accepts: 22 base64url characters, the first not `-`. */
export function isUsableClusterId(id: string): boolean {
  return /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/.test(id);
}

async function httpGet(url: string): Promise<{ status: number; body: string } | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return { status: res.status, body: await res.text() };
  } catch {
    return undefined;
  }
}
