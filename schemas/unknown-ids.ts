import { AuditlineError } from '../core/errors.js';

/**
 * How long a schema id the registry does not know is retried before the
 * record carrying it is dead-lettered. A registry's "not found" is not
 * always final: a follower that has not yet seen a just-registered id, or a
 * node still replaying its journal after a restart, answers 40403 for ids
 * it will know shortly. Each id gets `windowMs` from its first miss in this
 * process: within it a miss is retriable (the batch waits: backpressure),
 * after it final (SCHEMA_NOT_FOUND, dead-lettered with its reason). An id
 * found later is forgotten. At most `maxTracked` ids are remembered, the
 * oldest miss forgotten first, so ids of garbage records cannot grow memory.
 */
export class UnknownSchemaIds {
  private readonly firstMiss = new Map<number, number>();

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxTracked = 10_000,
  ) {}

  /** The error for a lookup of `id` that the registry at `registry` answered with its own "not found". */
  miss(id: number, registry: string): AuditlineError {
    const now = this.now();
    let since = this.firstMiss.get(id);
    if (since === undefined) {
      since = now;
      if (this.windowMs > 0) this.remember(id, now);
    }
    const unknownForMs = now - since;
    if (unknownForMs < this.windowMs) {
      return new AuditlineError(
        'SCHEMA_NOT_FOUND',
        `schema id ${id} is not registered in ${registry} (yet?): retried for ${this.windowMs} ms from its first miss (a follower behind, a registry still loading its schemas), then dead-lettered`,
        { retriable: true, details: { schemaId: id, unknownForMs } },
      );
    }
    return new AuditlineError('SCHEMA_NOT_FOUND', `schema id ${id} is not registered in ${registry}${unknownForMs > 0 ? ` (still unknown ${unknownForMs} ms after its first lookup)` : ''}`, {
      details: { schemaId: id, unknownForMs },
    });
  }

  /** The registry knows `id` (again): a later miss starts a new window. */
  found(id: number): void {
    this.firstMiss.delete(id);
  }

  private remember(id: number, at: number): void {
    this.firstMiss.set(id, at);
    if (this.firstMiss.size > this.maxTracked) this.firstMiss.delete(this.firstMiss.keys().next().value!);
  }
}
