import { Option, type Command } from 'commander';
import { z } from 'zod';
import { parseEnv } from '../../core/env.js';
import { loadEndpoints } from '../../core/endpoints.js';
import { createKafka } from '../../core/clients/kafka.js';
import { loadTokenizerKafkaNames } from '../../consumers/tokenizer/index.js';
import { consumerRuntimes } from '../consumer-runtimes.js';
import { renderRows } from './query.js';
import { TOPICS } from '../../infra/kafka/topics.js';
import { aclCommands, applyAcls, auditAcls, extraTopicAcls, parsePrincipals, type AclNames, type AclRule } from '../../infra/kafka/acls.js';
import { EXIT } from '../exit.js';

const say = (message: string) => process.stderr.write(`${message}\n`);

/** Settings of `acls` only (docs/configuration.md). */
export const ACL_SETTINGS = {
  AUDITLINE_KAFKA_ACL_PRINCIPALS: z.string().optional(),
};

/** The names the ACLs are about: the topics `setup` creates and each service's group as its settings give it. */
export function aclNames(env: NodeJS.ProcessEnv = process.env): AclNames {
  const runtimes = consumerRuntimes(env);
  return {
    topics: { ...TOPICS },
    groups: { tokenizer: runtimes.tokenizer.groupId, hotstore: runtimes.hotstore.groupId, archiver: runtimes.archiver.groupId, alerts: runtimes.alerts.groupId },
    transactionalIdPrefix: loadTokenizerKafkaNames(env).transactionalIdPrefix,
  };
}

/** The rules as the table `acls` prints (a prefixed name ends in `*`). */
function table(rules: readonly AclRule[]): string {
  return renderRows(
    rules.map((r) => ({ role: r.role, principal: r.principal, operation: r.operation, resource: r.resource, name: r.pattern === 'prefixed' ? `${r.name}*` : r.name })),
    ['role', 'principal', 'operation', 'resource', 'name'],
    'table',
  );
}

export function registerAcls(program: Command): void {
  program
    .command('acls')
    .description('the Kafka ACLs each role needs (only the tokenizer reads audit.raw and writes audit.events): print them, or apply them to a cluster with an authorizer')
    // One output at a time: with two of them, all but one were dropped without a word (exit 2 instead).
    .addOption(new Option('--commands', 'print them as kafka-acls.sh commands instead of a table').conflicts(['json', 'apply']))
    .addOption(new Option('--json', 'print them as JSON').conflicts(['commands', 'apply']))
    .addOption(new Option('--apply', 'create them on the cluster (needs a super user in AUDITLINE_KAFKA_SASL_*), then list grants on the audit topics that they do not contain').conflicts(['commands', 'json']))
    .addHelpText(
      'after',
      '\nAt most one of --commands, --json and --apply (exit 2 otherwise).\nPrincipals: AUDITLINE_KAFKA_ACL_PRINCIPALS, e.g. tokenizer=User:tok,hotstore=User:hot (default User:auditline-<role>;\nroles: producer, tokenizer, hotstore, archiver, alerts, operator). Group ids follow the services\' settings.\nExit 1 after --apply when the audit topics carry grants the spec does not contain (printed). docs/topics.md, "Access".',
    )
    .action(async (opts: { commands?: boolean; json?: boolean; apply?: boolean }) => {
      const { AUDITLINE_KAFKA_ACL_PRINCIPALS: principals } = parseEnv(ACL_SETTINGS, process.env);
      const rules = auditAcls(parsePrincipals(principals), aclNames());
      if (!opts.apply) {
        const endpoints = opts.commands ? loadEndpoints() : undefined;
        if (opts.json) process.stdout.write(`${JSON.stringify(rules, null, 2)}\n`);
        else if (opts.commands) process.stdout.write(`${aclCommands(rules, endpoints!.kafka.brokers.join(',')).join('\n')}\n`);
        else process.stdout.write(table(rules));
        return;
      }
      const admin = createKafka(loadEndpoints().kafka).admin();
      await admin.connect();
      try {
        await applyAcls(admin, rules);
        say(`kafka acls: ${rules.length} rules present (created where missing)`);
        const extra = await extraTopicAcls(admin, rules);
        for (const line of extra) process.stdout.write(`extra grant: ${line}\n`);
        if (extra.length > 0) {
          say(`kafka acls: ${extra.length} grant(s) on the audit topics that the spec does not contain; review and remove them with kafka-acls.sh --remove`);
          process.exitCode = EXIT.failure;
        }
      } finally {
        await admin.disconnect();
      }
    });
}
