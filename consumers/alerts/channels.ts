import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AuditlineError } from '../../core/errors.js';

export const PAYLOAD_FORMATS = ['slack', 'json'] as const;
export type PayloadFormat = (typeof PAYLOAD_FORMATS)[number];

/** A webhook endpoint alerts are delivered to. The URL and the secret are secrets: never logged. */
export interface Channel {
  name: string;
  url: URL;
  format: PayloadFormat;
  /** HMAC-SHA256 key of the request signature. */
  secret: Buffer;
  /** Most requests per minute to this channel (token bucket, burst = a tenth of it, at least 1). */
  ratePerMinute: number;
}

const channelSchema = z
  .strictObject({
    url: z.string().optional(),
    url_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name').optional(),
    format: z.enum(PAYLOAD_FORMATS, { message: `must be one of ${PAYLOAD_FORMATS.join(', ')}` }).default('json'),
    secret_env: z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name').optional(),
    secret_file: z.string().optional(),
    rate_per_minute: z.number().int().min(1).max(60_000).default(60),
  })
  .superRefine((c, ctx) => {
    if ((c.url === undefined) === (c.url_env === undefined)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'set exactly one of url and url_env' });
    if ((c.secret_env === undefined) === (c.secret_file === undefined)) ctx.addIssue({ code: 'custom', path: ['secret_env'], message: 'set exactly one of secret_env and secret_file' });
  });

const fileSchema = z.strictObject({ channels: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'channel names are 1-64 characters of a-z 0-9 _ -'), z.unknown()) });

/** Reads and validates the channels file; URLs and secrets come from the environment (or a secret file). */
export function loadChannelsFile(file: string, env: NodeJS.ProcessEnv = process.env): Map<string, Channel> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw invalid(file, `cannot read or parse the YAML (${(err as NodeJS.ErrnoException).code ?? (err as Error).name})`);
  }
  return parseChannels(doc, file, env);
}

export function parseChannels(doc: unknown, source: string, env: NodeJS.ProcessEnv = process.env): Map<string, Channel> {
  const file = fileSchema.safeParse(doc);
  if (!file.success) throw invalid(source, `field ${file.error.issues[0]!.path.join('.') || 'channels'}: ${file.error.issues[0]!.message}`);
  const out = new Map<string, Channel>();
  for (const [name, raw] of Object.entries(file.data.channels)) {
    const r = channelSchema.safeParse(raw);
    if (!r.success) throw invalid(source, `channel "${name}": field ${r.error.issues[0]!.path.join('.')}: ${r.error.issues[0]!.message}`);
    const c = r.data;
    const urlText = c.url ?? env[c.url_env!]?.trim();
    if (!urlText) throw invalid(source, `channel "${name}": field url_env: environment variable ${c.url_env} is not set`);
    let url: URL;
    try {
      url = new URL(urlText);
    } catch {
      throw invalid(source, `channel "${name}": field ${c.url ? 'url' : 'url_env'}: not a valid URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(source, `channel "${name}": field url: must be http or https`);
    let secret: string | undefined;
    if (c.secret_env) {
      secret = env[c.secret_env]?.trim();
      if (!secret) throw invalid(source, `channel "${name}": field secret_env: environment variable ${c.secret_env} is not set`);
    } else {
      try {
        secret = readFileSync(c.secret_file!, 'utf8').trim();
      } catch (err) {
        throw invalid(source, `channel "${name}": field secret_file: cannot read the file (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    if (secret.length < 16) throw invalid(source, `channel "${name}": the secret must be at least 16 characters`);
    out.set(name, { name, url, format: c.format, secret: Buffer.from(secret, 'utf8'), ratePerMinute: c.rate_per_minute });
  }
  return out;
}

function invalid(source: string, reason: string): AuditlineError {
  return new AuditlineError('CONFIG_INVALID', `invalid alert channels in ${source}: ${reason}`, { details: { file: source } });
}
