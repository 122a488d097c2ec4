import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { assetPath } from '../../core/paths.js';
import { accessDdl, accessGrants, PRINCIPALS, roleGrantBody, toScript } from '../../infra/clickhouse/access.js';
import { localConfigXml, localUsersXml, sha256Hex } from '../../infra/clickhouse/access-xml.js';
import { columnNames, parseCreateTable } from '../../infra/clickhouse/cluster-ddl.js';
import { ACCESS_TABLES, columnClasses, HOTSTORE_COLUMN_SOURCES, piiColumns } from '../../infra/clickhouse/column-classes.js';
import { DEFAULT_MIGRATIONS_DIR, readMigrations, splitStatements } from '../../infra/clickhouse/migrate.js';
import { auditEventSchema, type RawSchema } from '../../schemas/index.js';

/** The real migrations, rendered with retention days no other number in them uses. */
const PII_DAYS = 11111;
const INTERNAL_DAYS = 22222;
const tables = new Map(
  readMigrations(DEFAULT_MIGRATIONS_DIR, { database: 'audit', ttl_days_pii: PII_DAYS, ttl_days_sox: 33333, ttl_days_internal: INTERNAL_DAYS })
    .flatMap((m) => splitStatements(m.sql))
    .map(parseCreateTable)
    .filter((t) => t !== undefined)
    .map((t) => [t.table, t]),
);

test('every column of every hot store table in the migrations has a declared source, in the same order', () => {
  for (const table of ACCESS_TABLES) {
    const created = tables.get(table);
    assert.ok(created, `the migrations create ${table}`);
    assert.deepEqual(Object.keys(HOTSTORE_COLUMN_SOURCES[table]), columnNames(created), table);
  }
});

test('the PII columns are exactly the columns fed by pii-tagged schema fields', () => {
  assert.deepEqual(piiColumns(), {
    executions: ['input'],
    execution_results: ['output', 'error_message'],
    steps: ['input_data', 'output_data', 'error_message'],
    decisions: ['branch_reason', 'condition_values'],
    events: [],
  });
});

test('the columns with the GDPR column TTL in the migrations are the PII columns, and no other column has a TTL', () => {
  const pii = piiColumns();
  for (const table of ACCESS_TABLES) {
    const withTtl = tables.get(table)!.elements.filter((e) => /\sTTL\s/.test(e));
    assert.ok(withTtl.every((e) => e.includes(`INTERVAL ${PII_DAYS} DAY`)), `${table}: column TTLs are the pii retention`);
    assert.deepEqual(columnNames({ ...tables.get(table)!, elements: withTtl }), pii[table], table);
    assert.match(tables.get(table)!.clauses, new RegExp(`TTL toDateTime\\(event_time\\) \\+ INTERVAL ${INTERNAL_DAYS} DAY`), `${table}: table TTL`);
  }
});

test('the operational role is granted every non-PII column by name and no PII column; compliance whole tables; the writer inserts only', () => {
  const grants = accessGrants({ database: 'audit' });
  const classes = columnClasses();
  const pii = piiColumns();
  for (const table of ACCESS_TABLES) {
    const op = grants.filter((g) => g.role === PRINCIPALS.operational.role && g.table === table);
    assert.equal(op.length, 1);
    assert.equal(op[0]!.privilege, 'SELECT');
    assert.deepEqual(op[0]!.columns, classes[table].map(([c]) => c).filter((c) => !pii[table].includes(c)), `${table}: operational columns`);
    for (const column of pii[table]) assert.ok(!op[0]!.columns!.includes(column), `${table}.${column} is hidden`);

    const compliance = grants.filter((g) => g.role === PRINCIPALS.compliance.role && g.table === table);
    assert.deepEqual(compliance.map((g) => [g.privilege, g.columns]), [['SELECT', undefined]]);
    const writer = grants.filter((g) => g.role === PRINCIPALS.writer.role && g.table === table);
    assert.deepEqual(writer.map((g) => [g.privilege, g.columns]), [['INSERT', undefined]]);
  }
  assert.ok(grants.every((g) => g.database === 'audit'));
});

test('tagging another schema field pii removes its column from the operational grant (derived, not listed)', () => {
  const schema = structuredClone(auditEventSchema().raw) as RawSchema;
  const payload = (schema.fields as RawSchema[]).find((f) => f.name === 'payload')!;
  const step = (payload.type as RawSchema[]).find((t) => t.name === 'StepFinished')!;
  (step.fields as RawSchema[]).find((f) => f.name === 'step_name')!.dataClass = 'pii';
  const op = accessGrants({ database: 'audit', schema }).find((g) => g.role === PRINCIPALS.operational.role && g.table === 'steps')!;
  assert.ok(!op.columns!.includes('step_name'));
  assert.ok(accessGrants({ database: 'audit' }).find((g) => g.role === PRINCIPALS.operational.role && g.table === 'steps')!.columns!.includes('step_name'));
});

test('SQL DDL: roles with all privileges replaced in one GRANT, users only when password hashes are given', () => {
  const ddl = accessDdl({ database: 'audit' });
  assert.deepEqual(
    ddl.map((s) => s.split(' ').slice(0, 2).join(' ')),
    ['CREATE ROLE', 'GRANT INSERT', 'CREATE ROLE', 'GRANT SELECT(execution_id,', 'CREATE ROLE', 'GRANT SELECT'],
  );
  assert.equal(
    ddl[1],
    'GRANT INSERT ON audit.executions, INSERT ON audit.execution_results, INSERT ON audit.steps, INSERT ON audit.decisions, INSERT ON audit.events TO auditline_write WITH REPLACE OPTION',
  );
  assert.match(ddl[3]!, /^GRANT SELECT\(execution_id, workflow_id, workflow_name, .*\) ON audit\.executions, SELECT\(.*\) ON audit\.events TO auditline_read_operational WITH REPLACE OPTION$/);
  assert.doesNotMatch(ddl[3]!, /\b(input|output|input_data|output_data|error_message|branch_reason|condition_values)\b/);

  const hash = sha256Hex('s3cret');
  const withUsers = accessDdl({ database: 'audit', cluster: 'prod', users: { compliance: { passwordSha256Hex: hash } } });
  assert.ok(withUsers.every((s) => s.includes(" ON CLUSTER 'prod'")));
  assert.deepEqual(withUsers.slice(-2), [
    `CREATE USER IF NOT EXISTS auditline_compliance ON CLUSTER 'prod' IDENTIFIED WITH sha256_hash BY '${hash}'`,
    "GRANT ON CLUSTER 'prod' auditline_read_compliance TO auditline_compliance",
  ]);
  assert.ok(!withUsers.join('\n').includes('s3cret'));
  assert.throws(() => accessDdl({ database: 'audit', users: { writer: { passwordSha256Hex: 'plain' } } }), /64 hex digits/);
  assert.throws(() => accessDdl({ database: 'audit; DROP' }), /database name .* is not a plain identifier/);
  assert.throws(() => accessDdl({ database: 'audit', cluster: "x' OR" }), /cluster name/);
});

test('users.xml: default user as clickhouse-local defines it, one role and one user per principal, passwords only hashed', () => {
  const passwords = { writer: 'w-pass', operational: 'o<pass>', compliance: 'c&pass' };
  const xml = localUsersXml({ database: 'audit', passwords });
  assert.match(
    xml,
    /<default>\s*<password><\/password>\s*<networks><ip>::\/0<\/ip><\/networks>\s*<profile>default<\/profile>\s*<quota>default<\/quota>\s*<named_collection_control>1<\/named_collection_control>\s*<\/default>/,
  );
  const grants = accessGrants({ database: 'audit' });
  for (const p of Object.values(PRINCIPALS)) {
    assert.ok(xml.includes(`<grants><query>GRANT ${roleGrantBody(grants, p.role)}</query></grants>`), `${p.role} grants as in the SQL DDL`);
    const user = new RegExp(`<${p.user}>\\s*<password_sha256_hex>${sha256Hex(passwords[p.name])}</password_sha256_hex>[\\s\\S]*?<grants><query>GRANT ${p.role}</query></grants>\\s*</${p.user}>`);
    assert.match(xml, user);
    assert.ok(!xml.includes(passwords[p.name]), `${p.user}'s password is not in the file`);
  }
  assert.match(localConfigXml('/s/clickhouse/users&.xml'), /<users_config>\/s\/clickhouse\/users&amp;\.xml<\/users_config>/);
});

test('the cluster variant grants on both tables of each pair', () => {
  const ddl = accessDdl({ database: 'audit', cluster: 'c', targets: (t) => [t, `${t}_local`] });
  const op = ddl.find((s) => s.includes('TO auditline_read_operational'))!;
  for (const table of ACCESS_TABLES) {
    assert.ok(op.includes(` ON audit.${table}, `), `${table} granted`);
    assert.match(op, new RegExp(` ON audit\\.${table}_local(, | TO )`), `${table}_local granted`);
  }
});

test('docs/hotstore.md prints exactly the access DDL the code renders', () => {
  const doc = readFileSync(assetPath('docs', 'hotstore.md'), 'utf8');
  assert.ok(doc.includes(`\`\`\`sql\n${toScript(accessDdl({ database: 'audit' }))}\`\`\``), 'regenerate the block with print-ddl.js access');
});
