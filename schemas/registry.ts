import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { AuditlineError, errorMessage } from '../core/errors.js';
import type { Endpoints } from '../core/endpoints.js';
import { SUBJECT_COMPATIBILITY } from './catalog.js';

export type Compatibility = 'BACKWARD' | 'BACKWARD_TRANSITIVE' | 'FORWARD' | 'FORWARD_TRANSITIVE' | 'FULL' | 'FULL_TRANSITIVE' | 'NONE';

/**
 * Thin wrapper over the Confluent-compatible registry API: registration with
 * a compatibility level, lookups by id, and errors mapped to Auditline codes
 * (SCHEMA_INVALID, SCHEMA_INCOMPATIBLE, SCHEMA_NOT_FOUND, REGISTRY_UNAVAILABLE).
 */
export class RegistryClient {
  readonly client: SchemaRegistry;
  private readonly url: string;
  private readonly authHeader: string | undefined;
  private readonly requestTimeoutMs: number;

  /** `requestTimeoutMs`: how long one lookup may take before it fails as REGISTRY_UNAVAILABLE (retriable); a registration, with the library's own retries, three times that. */
  constructor(config: Endpoints['registry'], options: { requestTimeoutMs?: number } = {}) {
    this.url = config.url;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    const auth = config.username ? { username: config.username, password: config.password ?? '' } : undefined;
    this.authHeader = auth ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` : undefined;
    this.client = new SchemaRegistry({ host: config.url, clientId: 'auditline', retry: { retries: 3 }, ...(auth ? { auth } : {}) });
  }

  /**
   * Sets the subject's compatibility, then registers the schema (idempotent:
   * registering the same schema again returns the same id).
   */
  async register(subject: string, schema: string | Record<string, unknown>, compatibility: Compatibility = SUBJECT_COMPATIBILITY): Promise<number> {
    const text = typeof schema === 'string' ? schema : JSON.stringify(schema);
    validateAvro(subject, text);
    await this.setCompatibility(subject, compatibility);
    // The library's requests have no deadline of their own: a registry that answers the PUT above but never the
    // POST would hold a producer's ready() (and every startExecution waiting on it) forever.
    const deadlineMs = this.requestTimeoutMs * 3;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new AuditlineError('REGISTRY_UNAVAILABLE', `schema registry did not answer registering ${subject} within ${deadlineMs} ms`, { retriable: true })),
        deadlineMs,
      );
    });
    try {
      const { id } = await Promise.race([this.client.register({ type: 'AVRO' as never, schema: text }, { subject, compatibility: compatibility as never }), timedOut]);
      return id;
    } catch (err) {
      throw mapRegistryError(err, subject);
    } finally {
      clearTimeout(timer);
    }
  }

  /** PUT /config/{subject}. */
  async setCompatibility(subject: string, compatibility: Compatibility): Promise<void> {
    await this.http('PUT', `/config/${encodeURIComponent(subject)}`, subject, { compatibility });
  }

  /** The subject's own compatibility level, or undefined when only the global default applies. */
  async getCompatibility(subject: string): Promise<Compatibility | undefined> {
    const body = (await this.http('GET', `/config/${encodeURIComponent(subject)}`, subject)) as { compatibilityLevel?: Compatibility } | undefined;
    return body?.compatibilityLevel;
  }

  /** Raw schema text registered under an id. */
  async schemaText(id: number): Promise<string> {
    const body = (await this.http('GET', `/schemas/ids/${id}`, `id ${id}`)) as { schema?: string } | undefined;
    if (!body?.schema) throw new AuditlineError('SCHEMA_NOT_FOUND', `schema id ${id} is not registered`);
    return body.schema;
  }

  /** Versions registered under a subject. */
  async versions(subject: string): Promise<number[]> {
    return ((await this.http('GET', `/subjects/${encodeURIComponent(subject)}/versions`, subject)) as number[] | undefined) ?? [];
  }

  private async http(method: string, path: string, what: string, body?: unknown): Promise<unknown> {
    let res: Response;
    let text: string;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers: {
          'Content-Type': 'application/vnd.schemaregistry.v1+json',
          ...(this.authHeader ? { Authorization: this.authHeader } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        // Without a deadline a registry that accepts the connection and never answers holds a consumer's batch forever, silently.
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      });
      text = await res.text();
    } catch (err) {
      throw new AuditlineError('REGISTRY_UNAVAILABLE', `schema registry unreachable (${method} ${path}): ${errorMessage(err)}`, {
        retriable: true,
        cause: err,
      });
    }
    if (res.status === 404 && method === 'GET') {
      if (isRegistryNotFound(text)) return undefined;
      // A 404 that is not the registry's own "not found" (error_code 404xx) comes from a wrong base URL or a proxy:
      // an outage of the registry to the caller, never a verdict on the record (a consumer would dead-letter it).
      throw new AuditlineError('REGISTRY_UNAVAILABLE', `schema registry request for ${what} answered HTTP 404 without a registry error: is the registry URL the base of its API (Apicurio: .../apis/ccompat/v7)?`, {
        retriable: true,
      });
    }
    if (!res.ok) {
      throw mapRegistryError({ status: res.status, message: text }, what);
    }
    return text ? JSON.parse(text) : undefined;
  }
}

/** Parses an Avro schema locally so that a broken schema fails with avsc's reason before any request. */
export function validateAvro(subject: string, text: string): avro.Type {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new AuditlineError('SCHEMA_INVALID', `schema for ${subject} is not valid JSON: ${errorMessage(err)}`);
  }
  try {
    return avro.Type.forSchema(parsed as avro.Schema, { noAnonymousTypes: true });
  } catch (err) {
    throw new AuditlineError('SCHEMA_INVALID', `schema for ${subject} is not a valid Avro schema: ${errorMessage(err)}`, { cause: err });
  }
}

function mapRegistryError(err: unknown, what: string): AuditlineError {
  if (err instanceof AuditlineError) return err;
  const status = typeof err === 'object' && err !== null && 'status' in err ? Number((err as { status: unknown }).status) : undefined;
  const message = typeof err === 'object' && err !== null && 'message' in err ? String((err as { message: unknown }).message) : String(err);
  if (status === 409) {
    return new AuditlineError('SCHEMA_INCOMPATIBLE', `registry rejected the schema for ${what} as incompatible: ${message}`, { cause: err });
  }
  if (status === 422 || status === 400) {
    return new AuditlineError('SCHEMA_INVALID', `registry rejected the schema for ${what} as invalid: ${message}`, { cause: err });
  }
  if (status === 404) {
    return new AuditlineError('SCHEMA_NOT_FOUND', `registry has no ${what}: ${message}`, { cause: err });
  }
  const hint = status === 401 || status === 403 ? ' (check the registry user name and password)' : '';
  return new AuditlineError('REGISTRY_UNAVAILABLE', `schema registry request for ${what} failed${status ? ` (HTTP ${status})` : ''}${hint}: ${message}`, {
    retriable: isRetriableStatus(status),
    cause: err,
  });
}

/**
 * Registry answers that say nothing about the request itself: no answer,
 * 5xx, throttling (429), a timeout (408), and refused credentials (401, 403:
 * rotated or not yet valid). A consumer retries them with backoff instead
 * of dead-lettering records whose schema it could not fetch.
 */
function isRetriableStatus(status: number | undefined): boolean {
  return status === undefined || Number.isNaN(status) || status >= 500 || status === 401 || status === 403 || status === 408 || status === 429;
}

/** True when a 404 body is the registry's own "not found" (Confluent error codes 40401-40499: subject, version, schema). */
function isRegistryNotFound(body: string): boolean {
  try {
    const code = (JSON.parse(body) as { error_code?: unknown }).error_code;
    return typeof code === 'number' && code >= 40400 && code < 40500;
  } catch {
    return false;
  }
}
