import { SchemaRegistry } from '@kafkajs/confluent-schema-registry';
import avro from 'avsc';
import { AuditlineError, errorMessage, isAuditlineError } from '../core/errors.js';
import type { Endpoints } from '../core/endpoints.js';
import { SUBJECT_COMPATIBILITY } from './catalog.js';
import { UnknownSchemaIds } from './unknown-ids.js';

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
  private readonly unknownIds: UnknownSchemaIds;

  /**
   * `requestTimeoutMs`: how long one lookup may take before it fails as REGISTRY_UNAVAILABLE (retriable); a
   * registration, with the library's own retries, three times that. `unknownIdRetryMs`: how long a schema id the
   * registry answers "not found" for stays a retriable SCHEMA_NOT_FOUND (from its first miss) before the miss is
   * final (consumers: `AUDITLINE_<SERVICE>_UNKNOWN_SCHEMA_RETRY_MS`); 0, the default, makes it final at once.
   */
  constructor(config: Endpoints['registry'], options: { requestTimeoutMs?: number; unknownIdRetryMs?: number } = {}) {
    this.url = config.url;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.unknownIds = new UnknownSchemaIds(options.unknownIdRetryMs ?? 0);
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

  /**
   * PUT /config/{subject}. Apicurio answers the second of two concurrent
   * first PUTs on a subject (two instances starting on a new topic) with 409
   * "A rule named 'COMPATIBILITY' already exists": the rule exists then, so
   * the level is read back, and the PUT made again, as an update, if another
   * level was set.
   */
  async setCompatibility(subject: string, compatibility: Compatibility): Promise<void> {
    const put = () => this.http('PUT', `/config/${encodeURIComponent(subject)}`, subject, { compatibility });
    try {
      await put();
    } catch (err) {
      if (!isAuditlineError(err, 'SCHEMA_INCOMPATIBLE')) throw err;
      if ((await this.getCompatibility(subject)) === compatibility) return;
      await put();
    }
  }

  /** The subject's own compatibility level, or undefined when only the global default applies. */
  async getCompatibility(subject: string): Promise<Compatibility | undefined> {
    const body = await this.http('GET', `/config/${encodeURIComponent(subject)}`, subject);
    return body === NOT_FOUND ? undefined : (body as { compatibilityLevel?: Compatibility } | undefined)?.compatibilityLevel;
  }

  /**
   * Raw schema text registered under an id. SCHEMA_NOT_FOUND only on the
   * registry's own "not found", retriable within the unknown-id window
   * (UnknownSchemaIds); an answer without a schema (a proxy's page, an empty
   * body) is REGISTRY_UNAVAILABLE, retriable: it says nothing of the record
   * that carries the id.
   */
  async schemaText(id: number): Promise<string> {
    const body = await this.http('GET', `/schemas/ids/${id}`, `id ${id}`);
    if (body === NOT_FOUND) throw this.unknownIds.miss(id, this.url);
    const schema = (body as { schema?: unknown } | undefined)?.schema;
    if (typeof schema !== 'string' || schema === '') throw this.malformed(`/schemas/ids/${id}`, 'no schema');
    this.unknownIds.found(id);
    return schema;
  }

  /** Versions registered under a subject (none when the registry does not know the subject). */
  async versions(subject: string): Promise<number[]> {
    const path = `/subjects/${encodeURIComponent(subject)}/versions`;
    const body = await this.http('GET', path, subject);
    if (body === NOT_FOUND) return [];
    if (!Array.isArray(body)) throw this.malformed(path, 'no list of versions');
    return body as number[];
  }

  /**
   * A consumer's start-up check: `subject` exists with at least one version.
   * A registry that answers but has no schema under it (empty, another
   * environment, an Apicurio node still replaying its journal, a follower
   * behind) would make every record's lookup by id fail: SCHEMA_NOT_FOUND,
   * retriable, so the service waits for it as for a registry that is down.
   */
  async requireSubject(subject: string): Promise<number[]> {
    const versions = await this.versions(subject);
    if (versions.length > 0) return versions;
    throw new AuditlineError(
      'SCHEMA_NOT_FOUND',
      `schema registry ${this.url} has no version of subject ${subject}: run \`npx auditline setup\` against it, or wait for it (a registry still loading its schemas, a follower behind); a wrong URL or environment stays here. Consuming now would dead-letter every record`,
      { retriable: true, details: { subject, registry: this.url } },
    );
  }

  /**
   * Deletes a subject for good: the soft delete, then the permanent one
   * (`?permanent=true`; a Confluent registry refuses the second without the
   * first). A subject the registry does not know is already gone. For the
   * scratch subjects of tests and benchmarks: records written under a
   * deleted subject's schema can no longer be read by id.
   */
  async deleteSubject(subject: string): Promise<void> {
    const path = `/subjects/${encodeURIComponent(subject)}`;
    await this.http('DELETE', path, subject);
    await this.http('DELETE', `${path}?permanent=true`, subject);
  }

  private malformed(path: string, what: string): AuditlineError {
    return new AuditlineError('REGISTRY_UNAVAILABLE', `schema registry answered GET ${path} with ${what}: is ${this.url} the base of a Confluent-compatible API, without a proxy rewriting answers?`, { retriable: true });
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
    if (res.status === 404 && (method === 'GET' || method === 'DELETE')) {
      if (isRegistryNotFound(text)) return NOT_FOUND;
      // A 404 that is not the registry's own "not found" (error_code 404xx) comes from a wrong base URL or a proxy:
      // an outage of the registry to the caller, never a verdict on the record (a consumer would dead-letter it).
      throw new AuditlineError('REGISTRY_UNAVAILABLE', `schema registry request for ${what} answered HTTP 404 without a registry error: is the registry URL the base of its API (Apicurio: .../apis/ccompat/v7)?`, {
        retriable: true,
      });
    }
    if (!res.ok) {
      // A lookup sends nothing of a record but an id or a subject name: an error answer other than the registry's own
      // "not found" (400, 405, 410, 422 from a proxy or a broken registry) says the registry is unwell, never that a
      // record is bad, so it is retried; only a registration's refusal (its schema) is the caller's fault.
      throw method === 'GET' ? requestFailed(res.status, text, what, true) : mapRegistryError({ status: res.status, message: text }, what);
    }
    try {
      return text ? JSON.parse(text) : undefined;
    } catch (err) {
      throw new AuditlineError('REGISTRY_UNAVAILABLE', `schema registry answered ${method} ${path} with HTTP ${res.status} and a body that is not JSON: is ${this.url} the base of its API?`, {
        retriable: true,
        cause: err,
      });
    }
  }
}

/** What `http` returns for the registry's own 404 (error code 404xx) on a GET: the subject, version or id does not exist. */
const NOT_FOUND = Symbol('registry: not found');

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
  return requestFailed(status, message, what, isRetriableStatus(status), err);
}

/** REGISTRY_UNAVAILABLE for a request the registry (or what stands in front of it) answered with an error or not at all. */
function requestFailed(status: number | undefined, message: string, what: string, retriable: boolean, cause?: unknown): AuditlineError {
  const hint = status === 401 || status === 403 ? ' (check the registry user name and password)' : '';
  return new AuditlineError('REGISTRY_UNAVAILABLE', `schema registry request for ${what} failed${status ? ` (HTTP ${status})` : ''}${hint}: ${message}`, {
    retriable,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Answers to a registration that say nothing about the schema sent: no
 * answer, 5xx, throttling (429), a timeout (408), and refused credentials
 * (401, 403: rotated or not yet valid). A producer's ready() retries them.
 * (Every error answer to a lookup is retriable: see `http`.)
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
