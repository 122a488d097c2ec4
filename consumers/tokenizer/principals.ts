import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import { parse } from 'yaml';
import { z } from 'zod';
import { AuditlineError } from '../../core/errors.js';

/**
 * Who may call reveal, and in which roles (AUDITLINE_REVEAL_PRINCIPALS_FILE,
 * docs/tokenizer.md "Who is asking"). A caller is identified by a bearer
 * token (only its SHA-256 is in the file) or, without a token, by the OS
 * account running the command; the roles come from the file, never from
 * the command line.
 */
export interface PrincipalDirectory {
  principals: ReadonlyMap<string, { roles: readonly string[]; osUsers: readonly string[]; tokenSha256: readonly string[] }>;
}

/** The caller as reveal sees it: claimed (no directory configured) or authenticated. */
export interface RevealCaller {
  principal: string;
  /** Roles the caller holds per the directory; undefined when roles are only claimed (no directory). */
  heldRoles: readonly string[] | undefined;
  /** How the caller was identified: `token`, `os-user`, or `claimed`. */
  via: 'token' | 'os-user' | 'claimed';
  /** Set when `--as` names someone other than the authenticated caller. */
  claimedPrincipal?: string;
}

const id = z.string().regex(/^[A-Za-z0-9._@-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ @ -');
const fileSchema = z
  .object({
    principals: z.record(
      id,
      z
        .object({
          roles: z.array(z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'must be a role name')).min(1),
          os_users: z.array(z.string().min(1)).default([]),
          token_sha256: z.array(z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits')).default([]),
        })
        .strict(),
    ),
  })
  .strict();

/**
 * Reads and validates a principals file; CONFIG_INVALID names the setting and the failing path, never a token hash.
 * A file that others than its owner may write is refused: whoever could edit it could give themselves any role.
 */
export function loadPrincipalDirectory(file: string, setting = 'AUDITLINE_REVEAL_PRINCIPALS_FILE'): PrincipalDirectory {
  let data: unknown;
  let mode: number | undefined;
  try {
    mode = statSync(file).mode;
  } catch {
    // reported by the read below
  }
  if (mode !== undefined && process.platform !== 'win32' && (mode & 0o022) !== 0) {
    throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: ${file} may be written by its group or by anyone (mode ${(mode & 0o777).toString(8)}): make it writable by its owner only (chmod go-w)`, { details: { setting } });
  }
  try {
    data = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: cannot read ${file} as YAML (${(err as NodeJS.ErrnoException).code ?? 'parse error'})`, { details: { setting } });
  }
  const result = fileSchema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: ${file}: ${issue.path.join('.')}: ${issue.message}`, { details: { setting } });
  }
  const osUsers = new Map<string, string>();
  // A digest listed twice would make its token the principal listed last, with that one's roles: refused like an OS user.
  const tokens = new Map<string, string>();
  const principals = new Map<string, { roles: string[]; osUsers: string[]; tokenSha256: string[] }>();
  for (const [name, p] of Object.entries(result.data.principals)) {
    for (const u of p.os_users) {
      if (osUsers.has(u)) throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: OS user ${u} is listed for both ${osUsers.get(u)} and ${name}`, { details: { setting } });
      osUsers.set(u, name);
    }
    p.token_sha256.forEach((h, i) => {
      const holder = tokens.get(h);
      if (holder !== undefined) {
        throw new AuditlineError('CONFIG_INVALID', `invalid setting ${setting}: ${file}: principals.${name}.token_sha256.${i}: the same token digest is listed for both ${holder} and ${name}`, { details: { setting } });
      }
      tokens.set(h, name);
    });
    principals.set(name, { roles: p.roles, osUsers: p.os_users, tokenSha256: p.token_sha256 });
  }
  return { principals };
}

/**
 * Why an identified caller may not act, or undefined: `--as` naming someone
 * other than the authenticated caller, or (with a principals file) a role
 * the caller does not hold (`anyOf`: none of the roles a setting allows).
 * An authenticated caller must at least be listed in the file. Shared by
 * reveal, reports and reviews, erasure and legal holds.
 */
export function callerRefusal(
  caller: { principal: string; heldRoles?: readonly string[] | undefined; claimedPrincipal?: string | undefined },
  role?: string | { anyOf: readonly string[]; setting: string },
): string | undefined {
  if (caller.claimedPrincipal !== undefined) return `--as ${caller.claimedPrincipal} is not the caller: authenticated as ${caller.principal}`;
  if (caller.heldRoles === undefined) return undefined;
  const holds = `(holds: ${caller.heldRoles.join(', ') || 'none'})`;
  if (typeof role === 'string') {
    return caller.heldRoles.includes(role) ? undefined : `${caller.principal} does not hold role ${JSON.stringify(role)} in the principals file ${holds}`;
  }
  if (caller.heldRoles.length === 0) return `${caller.principal} is not in the principals file (AUDITLINE_REVEAL_PRINCIPALS_FILE)`;
  if (role !== undefined && !role.anyOf.some((r) => caller.heldRoles!.includes(r))) {
    return `${caller.principal} holds none of the roles ${role.setting} allows (${role.anyOf.join(', ')}) in the principals file ${holds}`;
  }
  return undefined;
}

/** SHA-256 (hex) of a bearer token, as the principals file stores it. */
export function tokenDigest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Identifies the caller of a reveal. Without a directory the principal and
 * role are what the caller claims (`via: claimed`). With one, a token (if
 * given) or else the OS account decides who the caller is; an unknown
 * caller gets no roles, so reveal refuses and records it.
 */
export function identifyRevealCaller(
  directory: PrincipalDirectory | undefined,
  claim: { as: string | undefined },
  credentials: { token?: string | undefined; osUser?: string } = {},
): RevealCaller {
  if (!directory) return { principal: claim.as ?? '', heldRoles: undefined, via: 'claimed' };
  let found: { name: string; via: 'token' | 'os-user' } | undefined;
  let unknown: string;
  if (credentials.token) {
    const digest = Buffer.from(tokenDigest(credentials.token), 'hex');
    for (const [name, p] of directory.principals) {
      if (p.tokenSha256.some((h) => timingSafeEqual(Buffer.from(h, 'hex'), digest))) found = { name, via: 'token' };
    }
    unknown = 'token:unknown';
  } else {
    const user = credentials.osUser ?? os.userInfo().username;
    for (const [name, p] of directory.principals) if (p.osUsers.includes(user)) found = { name, via: 'os-user' };
    unknown = `os-user:${user}`;
  }
  if (!found) return { principal: unknown, heldRoles: [], via: credentials.token ? 'token' : 'os-user', ...(claim.as ? { claimedPrincipal: claim.as } : {}) };
  const roles = directory.principals.get(found.name)!.roles;
  return { principal: found.name, heldRoles: roles, via: found.via, ...(claim.as && claim.as !== found.name ? { claimedPrincipal: claim.as } : {}) };
}
