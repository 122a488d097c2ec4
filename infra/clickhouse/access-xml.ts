import { createHash } from 'node:crypto';
import { accessGrants, PRINCIPAL_NAMES, PRINCIPALS, roleGrantBody, type PrincipalName } from './access.js';

/**
 * The access definition (access.ts) as the XML users file of the local
 * ClickHouse engine, which cannot create users or roles by SQL but enforces
 * the roles, users and grants of a users file named by `<users_config>`.
 * Grants name tables that need not exist yet: they apply once the
 * migrations create them.
 */
export interface LocalUsersOptions {
  database: string;
  /** Password of each Auditline user; stored as its SHA-256, never as text. */
  passwords: Record<PrincipalName, string>;
}

/**
 * users.xml: the `default` user exactly as clickhouse-local defines it when
 * no users file is given (no password, every privilege, any address; the
 * listener itself binds to 127.0.0.1), plus one role and one user per
 * principal.
 */
export function localUsersXml(options: LocalUsersOptions): string {
  const grants = accessGrants({ database: options.database });
  const roles = PRINCIPAL_NAMES.map((name) => {
    const p = PRINCIPALS[name];
    return `    <${p.role}>
      <!-- ${escapeXml(p.description)} -->
      <grants><query>GRANT ${escapeXml(roleGrantBody(grants, p.role))}</query></grants>
    </${p.role}>`;
  });
  const users = PRINCIPAL_NAMES.map((name) => {
    const p = PRINCIPALS[name];
    return `    <${p.user}>
      <password_sha256_hex>${sha256Hex(options.passwords[name])}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <grants><query>GRANT ${p.role}</query></grants>
    </${p.user}>`;
  });
  return `<?xml version="1.0"?>
<!-- Written by \`auditline stack up\` from infra/clickhouse/access.ts; edits are overwritten. -->
<clickhouse>
  <profiles><default/></profiles>
  <quotas><default/></quotas>
  <roles>
${roles.join('\n')}
  </roles>
  <users>
    <default>
      <password></password>
      <networks><ip>::/0</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
      <named_collection_control>1</named_collection_control>
    </default>
${users.join('\n')}
  </users>
</clickhouse>
`;
}

/** config.xml: only points at the users file; every other server setting keeps clickhouse-local's default. */
export function localConfigXml(usersXmlPath: string): string {
  return `<?xml version="1.0"?>
<!-- Written by \`auditline stack up\`; edits are overwritten. -->
<clickhouse>
  <users_config>${escapeXml(usersXmlPath)}</users_config>
</clickhouse>
`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
