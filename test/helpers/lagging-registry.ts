import { createServer } from 'node:http';
import { retryRetriable, type BatchHandler, type SourceRecord } from '../../core/service/index.js';
import { auditEventSchema } from '../../schemas/index.js';

/**
 * A stand-in for a registry follower that lags behind: it answers the
 * registry's own 404 (error code 40403) for every id not in `known`, and the
 * event schema for the ids in it (or the text `texts` gives for an id).
 */
export async function laggingRegistry(known: Set<number>, texts: ReadonlyMap<number, string> = new Map()) {
  const { text } = auditEventSchema();
  const server = createServer((req, res) => {
    const id = Number(/\/schemas\/ids\/(\d+)$/.exec(req.url ?? '')?.[1]);
    if (known.has(id)) res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ schema: texts.get(id) ?? text }));
    else res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error_code: 40403, message: `No content with ID '${id}' was found.` }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** Runs a handler on a batch as the BatchConsumer does: retriable failures are retried with backoff until the batch settles. */
export async function settle(handler: BatchHandler, records: SourceRecord[]) {
  let attempts = 0;
  const began = performance.now();
  const result = await retryRetriable(() => ((attempts += 1), handler(records, { signal: new AbortController().signal })), { backoff: { initialMs: 20, maxMs: 50 } });
  return { ...result, attempts, elapsedMs: performance.now() - began };
}

