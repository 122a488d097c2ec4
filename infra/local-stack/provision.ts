import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { AuditlineError } from '../../core/errors.js';
import { withLock } from './lock.js';
import type { StackSettings } from './settings.js';

/**
 * Downloads each service from the package registries into the cache
 * (outside the work tree). A folder is complete only when its `.complete`
 * marker exists, so an interrupted download is redone, never half-used.
 */
export type Progress = (message: string) => void;

export interface Provisioned {
  kafkaLibs: string;
  registryJar: string;
  libchdb: string;
  motoServer: string;
}

export function kafkaDir(s: StackSettings): string {
  return path.join(s.cacheDir, `kafka-${s.kafka.version}`);
}
export function registryDir(s: StackSettings): string {
  return path.join(s.cacheDir, `apicurio-registry-${s.registry.version}`);
}
export function clickhouseDir(s: StackSettings): string {
  return path.join(s.cacheDir, `chdb-${s.clickhouse.version}`);
}
export function motoDir(s: StackSettings): string {
  return path.join(s.cacheDir, `moto-${s.s3.motoVersion}`);
}

/** Kafka broker jars and a logging backend from Maven Central. */
export async function provisionKafka(s: StackSettings, progress: Progress): Promise<string> {
  const dir = kafkaDir(s);
  const libs = path.join(dir, 'libs');
  await once(dir, 'kafka', progress, `Kafka ${s.kafka.version} jars from Maven Central (~70 MB)`, async (tmp) => {
    // Kafka 3.x logs through slf4j 1.7 + log4j 1.x API (reload4j); 4.x through slf4j 2 + log4j2.
    // kafka_2.13 4.x still declares slf4j-api 1.7.36, which Maven would pick over the 2.x that
    // log4j-slf4j2-impl needs (same depth, declared first): slf4j 1.7 ignores that provider and the
    // broker logs nothing (NOP logger). Declaring slf4j-api 2 here wins; its logger API is unchanged.
    const logging = s.kafka.version.startsWith('3.')
      ? dep('org.slf4j', 'slf4j-reload4j', '1.7.36')
      : `${dep('org.slf4j', 'slf4j-api', '2.0.16')}${dep('org.apache.logging.log4j', 'log4j-slf4j2-impl', '2.24.3')}${dep('org.apache.logging.log4j', 'log4j-core', '2.24.3')}`;
    writeFileSync(path.join(tmp, 'pom.xml'), pom('auditline-kafka', `${dep('org.apache.kafka', 'kafka_2.13', s.kafka.version)}${logging}`));
    await run('kafka', 'mvn', ['-q', '-B', 'dependency:copy-dependencies', `-DoutputDirectory=${path.join(tmp, 'libs')}`], tmp);
  });
  return libs;
}

/** Apicurio Registry (Confluent-compatible API) distribution from Maven Central. */
export async function provisionRegistry(s: StackSettings, progress: Progress): Promise<string> {
  const dir = registryDir(s);
  const v = s.registry.version;
  await once(dir, 'registry', progress, `Apicurio Registry ${v} from Maven Central (~110 MB)`, async (tmp) => {
    await run('registry', 'mvn', ['-q', '-B', 'dependency:copy', `-Dartifact=io.apicurio:apicurio-registry-app:${v}:zip:all`, `-DoutputDirectory=${tmp}`], tmp);
    const zip = readdirSync(tmp).find((f) => f.endsWith('.zip'));
    if (!zip) throw new AuditlineError('STACK_PROVISION_FAILED', `registry: Maven produced no zip in ${tmp}`);
    await run('registry', s.python, ['-m', 'zipfile', '-e', zip, '.'], tmp);
    rmSync(path.join(tmp, zip));
  });
  const jar = readdirSync(dir).find((f) => f.endsWith('-runner.jar'));
  if (!jar) throw new AuditlineError('STACK_PROVISION_FAILED', `registry: no *-runner.jar in ${dir}; delete that folder to download again`);
  return path.join(dir, jar);
}

/** The ClickHouse engine (libchdb.so) from the npm package @chdb/lib-linux-x64-gnu. */
export async function provisionClickHouse(s: StackSettings, progress: Progress): Promise<string> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new AuditlineError('STACK_PROVISION_FAILED', 'clickhouse: the local engine is only packaged for linux-x64; set AUDITLINE_CLICKHOUSE_URL to a ClickHouse server');
  }
  const dir = clickhouseDir(s);
  await once(dir, 'clickhouse', progress, `ClickHouse engine ${s.clickhouse.version} from npm (~180 MB)`, async (tmp) => {
    await run('clickhouse', 'npm', ['pack', '--silent', `@chdb/lib-linux-x64-gnu@${s.clickhouse.version}`, '--pack-destination', tmp], tmp);
    const tgz = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!tgz) throw new AuditlineError('STACK_PROVISION_FAILED', `clickhouse: npm pack produced no tarball in ${tmp}`);
    await run('clickhouse', 'tar', ['xzf', tgz, '--strip-components=1', 'package/libchdb.so'], tmp);
    rmSync(path.join(tmp, tgz));
  });
  return path.join(dir, 'libchdb.so');
}

/** moto's S3 server in a virtualenv, from PyPI. */
export async function provisionMoto(s: StackSettings, progress: Progress): Promise<string> {
  const dir = motoDir(s);
  await once(dir, 's3', progress, `moto[server] ${s.s3.motoVersion} from PyPI`, async (tmp) => {
    // The venv must be created at its final path: its scripts hard-code it.
    const venv = path.join(dir, 'venv');
    rmSync(venv, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    await run('s3', s.python, ['-m', 'venv', venv], tmp);
    await run('s3', path.join(venv, 'bin', 'pip'), ['install', '-q', `moto[server]==${s.s3.motoVersion}`], tmp);
  });
  return path.join(dir, 'venv', 'bin', 'moto_server');
}

async function once(dir: string, service: string, progress: Progress, what: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  if (existsSync(path.join(dir, '.complete'))) return;
  // Another launcher (another clone's `stack up`) may be filling the same folder: one at a time, then look again.
  await withLock(`${dir}.lock`, (pid) => progress(`${service}: waiting for pid ${pid}, which is downloading into ${dir}`), async () => {
    if (!existsSync(path.join(dir, '.complete'))) await download(dir, service, progress, what, fill);
  });
}

async function download(dir: string, service: string, progress: Progress, what: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  progress(`${service}: downloading ${what} into ${dir}`);
  const started = Date.now();
  const tmp = `${dir}.partial-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    await fill(tmp);
    // Keep anything `fill` created at the final path (the moto venv), move the rest in.
    mkdirSync(dir, { recursive: true });
    for (const entry of readdirSync(tmp)) {
      rmSync(path.join(dir, entry), { recursive: true, force: true });
      renameSync(path.join(tmp, entry), path.join(dir, entry));
    }
    writeFileSync(path.join(dir, '.complete'), new Date().toISOString());
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  progress(`${service}: downloaded in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function dep(group: string, artifact: string, version: string): string {
  return `<dependency><groupId>${group}</groupId><artifactId>${artifact}</artifactId><version>${version}</version></dependency>`;
}

function pom(artifact: string, deps: string): string {
  return `<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion><groupId>io.auditline.local</groupId><artifactId>${artifact}</artifactId><version>1</version><dependencies>${deps}</dependencies></project>\n`;
}

/** Runs a provisioning command; on failure names the service and shows the output's tail. */
function run(service: string, command: string, args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) =>
      reject(new AuditlineError('STACK_PROVISION_FAILED', `${service}: cannot run ${command}: ${err.message}`, { cause: err })),
    );
    child.on('close', (code) => {
      if (code === 0) resolve();
      else {
        const tail = output.trimEnd().split('\n').slice(-20).join('\n');
        reject(new AuditlineError('STACK_PROVISION_FAILED', `${service}: ${command} ${args.join(' ')} exited with ${code}\n${tail}`));
      }
    });
  });
}
