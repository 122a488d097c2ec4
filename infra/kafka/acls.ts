import kafkajs, { type Admin, type AclEntry as KafkajsAclEntry } from 'kafkajs';
import { AuditlineError, errorMessage } from '../../core/errors.js';
import { TOPICS } from './topics.js';

// kafkajs is CommonJS: its runtime values come through the default export under ESM.
const { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } = kafkajs;

/**
 * Who talks to Kafka, one principal each (docs/topics.md, "Access"):
 * workflows' producer clients, the four consumer services, and operators
 * (the `dlq` commands).
 */
export const KAFKA_ROLES = ['producer', 'tokenizer', 'hotstore', 'archiver', 'alerts', 'operator'] as const;
export type KafkaRole = (typeof KAFKA_ROLES)[number];

export type AclOperation = 'READ' | 'WRITE' | 'DESCRIBE' | 'DELETE';
export type AclResource = 'topic' | 'group' | 'transactional-id';

/** One ALLOW rule: `principal` may `operation` on the resource (a literal name, or every name starting with it). */
export interface AclRule {
  role: KafkaRole;
  principal: string;
  resource: AclResource;
  name: string;
  pattern: 'literal' | 'prefixed';
  operation: AclOperation;
}

/** The names the rules are about: topics as `setup` creates them, and each consumer service's group. */
export interface AclNames {
  topics: { raw: string; events: string; dlq: string; alertSignals: string; alertOutbox: string };
  groups: { tokenizer: string; hotstore: string; archiver: string; alerts: string };
  /** The tokenizer's transactional ids are `<prefix>-<source topic>-<partition>`. */
  transactionalIdPrefix: string;
}

/** Groups of the `dlq` commands: `<prefix><random id>`, one per run, deleted at its end (an ephemeral read of audit.dlq). */
export const DLQ_CLI_GROUP_PREFIX = 'auditline-dlq-cli-';

/**
 * Transactional ids of `dlq redrive`: `<prefix><DLQ topic>`, one per DLQ topic, so that a redrive fences any other
 * still running on the same DLQ topic (cli/commands/dlq.ts).
 */
export const DLQ_REDRIVE_TRANSACTIONAL_ID_PREFIX = 'auditline-dlq-redrive-';

/** Principals by default: `User:auditline-<role>` (AUDITLINE_KAFKA_ACL_PRINCIPALS overrides them). */
export function defaultPrincipals(): Record<KafkaRole, string> {
  return Object.fromEntries(KAFKA_ROLES.map((r) => [r, `User:auditline-${r}`])) as Record<KafkaRole, string>;
}

/** Default names: the topics of infra/kafka/topics.ts and the services' default group ids. */
export const DEFAULT_ACL_NAMES: AclNames = {
  topics: { ...TOPICS },
  groups: { tokenizer: 'auditline-tokenizer', hotstore: 'auditline-hotstore', archiver: 'auditline-archiver', alerts: 'auditline-alerts' },
  transactionalIdPrefix: 'auditline-tokenizer',
};

/**
 * The least access each role needs, as Kafka ACLs (ALLOW rules; with an
 * authorizer and no matching rule, Kafka denies). The point of them:
 * - `audit.raw` and `audit.dlq` may hold cleartext PII: only the tokenizer
 *   reads audit.raw, only operators read audit.dlq;
 * - only the tokenizer writes `audit.events` (operators may redrive dead
 *   letters there): downstream services trust what they read there to be
 *   tokenized, so nobody else may put records into it;
 * - producers write audit.raw and nothing else.
 * DESCRIBE comes with every READ and WRITE (metadata, offsets). Consumer
 * groups need READ (join, commit) and DESCRIBE (committed offsets); the
 * alerts service's groups are `<group>`, `<group>.rules` and `<group>.delivery`
 * (a prefixed rule on the group name covers them).
 */
export function auditAcls(principals: Record<KafkaRole, string>, names: AclNames = DEFAULT_ACL_NAMES): AclRule[] {
  const rules: AclRule[] = [];
  const allow = (role: KafkaRole, resource: AclResource, name: string, operations: AclOperation[], pattern: AclRule['pattern'] = 'literal') => {
    for (const operation of operations) rules.push({ role, principal: principals[role], resource, name, pattern, operation });
  };
  const { topics: t, groups: g } = names;
  const read = ['READ', 'DESCRIBE'] as AclOperation[];
  const write = ['WRITE', 'DESCRIBE'] as AclOperation[];
  const both = ['READ', 'WRITE', 'DESCRIBE'] as AclOperation[];

  allow('producer', 'topic', t.raw, write);

  allow('tokenizer', 'topic', t.raw, read);
  allow('tokenizer', 'group', g.tokenizer, read);
  allow('tokenizer', 'topic', t.events, write);
  allow('tokenizer', 'topic', t.dlq, write);
  allow('tokenizer', 'transactional-id', `${names.transactionalIdPrefix}-`, write, 'prefixed');

  for (const role of ['hotstore', 'archiver'] as const) {
    allow(role, 'topic', t.events, read);
    allow(role, 'group', g[role], read);
    allow(role, 'topic', t.dlq, write);
  }

  allow('alerts', 'topic', t.events, read);
  allow('alerts', 'topic', t.alertSignals, both);
  allow('alerts', 'topic', t.alertOutbox, both);
  allow('alerts', 'group', g.alerts, read, 'prefixed');
  allow('alerts', 'topic', t.dlq, write);

  allow('operator', 'topic', t.dlq, read);
  allow('operator', 'group', DLQ_CLI_GROUP_PREFIX, ['READ', 'DESCRIBE', 'DELETE'], 'prefixed');
  // Redrive puts a dead letter back on its source topic, the input of the service that dead-lettered it (docs/cli.md,
  // `dlq redrive`): audit.raw (tokenizer), audit.events (hot store, archiver), the alerts service's own topics.
  allow('operator', 'topic', t.raw, write);
  allow('operator', 'topic', t.events, write);
  allow('operator', 'topic', t.alertSignals, write);
  allow('operator', 'topic', t.alertOutbox, write);
  // A redrive sends in transactions of one transactional id per DLQ topic: a second redrive fences the first.
  allow('operator', 'transactional-id', DLQ_REDRIVE_TRANSACTIONAL_ID_PREFIX, write, 'prefixed');
  return dedupe(rules);
}

function dedupe(rules: AclRule[]): AclRule[] {
  const seen = new Set<string>();
  return rules.filter((r) => {
    const key = `${r.principal}|${r.resource}|${r.name}|${r.pattern}|${r.operation}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Principals from AUDITLINE_KAFKA_ACL_PRINCIPALS (`role=Type:name,...`,
 * e.g. `tokenizer=User:tok,hotstore=User:hot`); roles not named keep their
 * default. Unknown roles, malformed principals and a role named twice are
 * CONFIG_INVALID.
 */
export function parsePrincipals(text: string | undefined): Record<KafkaRole, string> {
  const principals = defaultPrincipals();
  if (!text?.trim()) return principals;
  const named = new Set<string>();
  for (const part of text.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const role = part.slice(0, eq).trim();
    const principal = part.slice(eq + 1).trim();
    if (eq < 0 || !(KAFKA_ROLES as readonly string[]).includes(role)) {
      throw invalid(`each entry must be <role>=<Type:name> with a role of ${KAFKA_ROLES.join(', ')}; got an entry starting ${JSON.stringify(part.slice(0, 20))}`);
    }
    if (!/^[A-Za-z]+:[^\s,]+$/.test(principal)) throw invalid(`the principal of ${role} must look like User:<name>`);
    // One principal per role: a second entry replaced the first without a word (which one was meant?).
    if (named.has(role)) throw invalid(`role ${role} is named twice; give one principal per role`);
    named.add(role);
    principals[role as KafkaRole] = principal;
  }
  return principals;
}

function invalid(reason: string): AuditlineError {
  return new AuditlineError('CONFIG_INVALID', `invalid setting AUDITLINE_KAFKA_ACL_PRINCIPALS: ${reason}`, { details: { setting: 'AUDITLINE_KAFKA_ACL_PRINCIPALS' } });
}

const RESOURCE_TYPES = { topic: AclResourceTypes.TOPIC, group: AclResourceTypes.GROUP, 'transactional-id': AclResourceTypes.TRANSACTIONAL_ID } as const;
/** kafkajs' enums are plain objects at run time (name -> code), without TypeScript's reverse mapping. */
const OPERATION_NAMES = new Map<number, string>(Object.entries(AclOperationTypes).map(([name, code]) => [code as number, name]));
const PATTERN_TYPES = { literal: ResourcePatternTypes.LITERAL, prefixed: ResourcePatternTypes.PREFIXED } as const;

function toKafkajs(rule: AclRule): KafkajsAclEntry {
  return {
    principal: rule.principal,
    host: '*',
    operation: AclOperationTypes[rule.operation],
    permissionType: AclPermissionTypes.ALLOW,
    resourceType: RESOURCE_TYPES[rule.resource],
    resourceName: rule.name,
    resourcePatternType: PATTERN_TYPES[rule.pattern],
  };
}

/** The rules as `kafka-acls.sh` commands, for clusters whose ACLs are managed by hand or by another tool. */
export function aclCommands(rules: readonly AclRule[], bootstrap = '<broker:port>'): string[] {
  const flag = { topic: '--topic', group: '--group', 'transactional-id': '--transactional-id' } as const;
  const operation = { READ: 'Read', WRITE: 'Write', DESCRIBE: 'Describe', DELETE: 'Delete' } as const;
  return rules.map(
    (r) =>
      `kafka-acls.sh --bootstrap-server ${bootstrap} --command-config admin.properties --add --allow-principal '${r.principal}' --operation ${operation[r.operation]} ${flag[r.resource]} '${r.name}'${r.pattern === 'prefixed' ? ' --resource-pattern-type prefixed' : ''}`,
  );
}

/**
 * Creates the rules on the cluster (CreateAcls is idempotent: an existing
 * rule stays as it is). Needs a principal with ALTER on the cluster (a super
 * user). A broker without an authorizer refuses with SECURITY_DISABLED:
 * that is CONFIG_INVALID here, since nothing would be enforced.
 */
export async function applyAcls(admin: Admin, rules: readonly AclRule[]): Promise<void> {
  try {
    await admin.createAcls({ acl: rules.map(toKafkajs) });
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === 'SECURITY_DISABLED') {
      throw new AuditlineError('CONFIG_INVALID', 'the Kafka cluster has no authorizer (authorizer.class.name), so ACLs cannot be set and would not be enforced', { cause: err });
    }
    throw new AuditlineError('KAFKA_UNAVAILABLE', `creating ACLs failed: ${errorMessage(err)}`, { retriable: type !== 'CLUSTER_AUTHORIZATION_FAILED', cause: err });
  }
}

/**
 * ALLOW rules on the Auditline topics that the spec does not contain (a
 * grant added by hand, or left from an earlier principal): what an access
 * review must look at. Read from the cluster with DescribeAcls.
 */
export async function extraTopicAcls(admin: Admin, rules: readonly AclRule[], names: AclNames = DEFAULT_ACL_NAMES): Promise<string[]> {
  const wanted = new Set(rules.filter((r) => r.resource === 'topic').map((r) => `${r.principal}|${r.name}|${r.operation}`));
  const extra: string[] = [];
  for (const topic of Object.values(names.topics)) {
    const found = await admin.describeAcls({
      resourceType: AclResourceTypes.TOPIC,
      resourceName: topic,
      resourcePatternType: ResourcePatternTypes.MATCH,
      operation: AclOperationTypes.ANY,
      permissionType: AclPermissionTypes.ALLOW,
    });
    for (const resource of found.resources) {
      for (const acl of resource.acls) {
        const operation = OPERATION_NAMES.get(acl.operation) ?? String(acl.operation);
        const literal = resource.resourcePatternType === ResourcePatternTypes.LITERAL && resource.resourceName === topic;
        if (literal && wanted.has(`${acl.principal}|${topic}|${operation}`)) continue;
        const on = literal ? topic : `${resource.resourceName}${resource.resourcePatternType === ResourcePatternTypes.PREFIXED ? '*' : ''}`;
        extra.push(`${topic}: ${operation} allowed to ${acl.principal} (host ${acl.host}) by a rule on ${on} that the spec does not grant`);
      }
    }
  }
  return [...new Set(extra)];
}
