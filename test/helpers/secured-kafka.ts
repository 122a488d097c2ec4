/**
 * A private Kafka broker with authentication (SASL/PLAIN) and an authorizer
 * (KRaft's StandardAuthorizer, nothing allowed without a rule), started from
 * the launcher's cached Kafka jars on free ports, for the tests of the ACLs
 * (infra/kafka/acls.ts). `admin` is a super user; every other user of
 * `users` starts with no rights at all.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKafka } from '../../core/clients/kafka.js';
import type { Endpoints } from '../../core/endpoints.js';
import { provisionKafka } from '../../infra/local-stack/provision.js';
import { kafkaClusterId } from '../../infra/local-stack/services.js';
import { loadStackSettings } from '../../infra/local-stack/settings.js';
import { freePort } from './ports.js';

export interface SecuredKafka {
  brokers: string[];
  /** Endpoint settings of one user (SASL/PLAIN over plaintext on 127.0.0.1). */
  as(user: string): Endpoints['kafka'];
  stop(): Promise<void>;
}

const ADMIN_PASSWORD = 'admin-secret';

/** Starts the broker; `users` are the principals' names (User:<name>), each with the password `<name>-secret`. */
export async function startSecuredKafka(users: readonly string[]): Promise<SecuredKafka> {
  for (const u of users) if (!/^[A-Za-z0-9_]+$/.test(u)) throw new Error(`user names must be [A-Za-z0-9_]: ${u}`);
  const settings = loadStackSettings(process.env);
  const libs = await provisionKafka(settings, () => undefined);
  const [port, internalPort, controllerPort] = [await freePort(), await freePort(), await freePort()];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'auditline-secured-kafka-'));
  const props = path.join(dir, 'server.properties');
  const jaasUsers = [`user_admin="${ADMIN_PASSWORD}"`, ...users.map((u) => `user_${u}="${u}-secret"`)].join(' ');
  writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      // Clients use CLIENT (SASL); the broker talks to itself on INTERNAL and CONTROLLER, as ANONYMOUS, a super user here.
      `listeners=CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=CLIENT://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort}`,
      'listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=INTERNAL',
      'sasl.enabled.mechanisms=PLAIN',
      `listener.name.client.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${ADMIN_PASSWORD}" ${jaasUsers};`,
      'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      'super.users=User:admin;User:ANONYMOUS',
      'allow.everyone.if.no.acl.found=false',
      `log.dirs=${path.join(dir, 'data')}`,
      'num.partitions=1',
      'auto.create.topics.enable=false',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=3',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=3',
      'group.initial.rebalance.delay.ms=0',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'log4j.properties'), 'log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n');
  const java = [`-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`, `-Dkafka.logs.dir=${path.join(dir, 'logs')}`, '-cp', `${libs}/*`];
  const format = spawnSync(settings.java, [...java, 'kafka.tools.StorageTool', 'format', '-t', kafkaClusterId(), '-c', props], { encoding: 'utf8' });
  if (format.status !== 0) throw new Error(`formatting the secured broker's storage failed: ${(format.stderr || format.stdout).slice(-2000)}`);
  const logFile = path.join(dir, 'broker.log');
  const log = openSync(logFile, 'a');
  const child: ChildProcess = spawn(settings.java, ['-Xmx384m', '-Xms384m', ...java, 'kafka.Kafka', props], { stdio: ['ignore', log, log] });
  closeSync(log);
  const brokers = [`127.0.0.1:${port}`];
  const as = (user: string): Endpoints['kafka'] => ({
    brokers,
    clientId: `acl-test-${user}`,
    ssl: false,
    sasl: { mechanism: 'plain', username: user, password: user === 'admin' ? ADMIN_PASSWORD : `${user}-secret` },
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) {
      const tail = readFileSync(logFile, 'utf8').slice(-3000);
      await stop();
      throw new Error(`the secured broker exited (${child.exitCode}):\n${tail}`);
    }
    const admin = createKafka(as('admin'), undefined, { connectionTimeout: 1_000, requestTimeout: 3_000, retry: { retries: 0 } }).admin();
    try {
      await admin.connect();
      await admin.describeCluster();
      await admin.disconnect();
      return { brokers, as, stop };
    } catch {
      await admin.disconnect().catch(() => undefined);
      if (Date.now() > deadline) {
        const tail = readFileSync(logFile, 'utf8').slice(-3000);
        await stop();
        throw new Error(`the secured broker did not answer within 90 s:\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
