// Container healthcheck of docker-compose.yml: exits 0 when the URL answers
// 2xx within 4 s, else 1. Node's own fetch: the slim image has no curl.
//   node infra/docker/healthcheck.mjs http://127.0.0.1:9464/readyz
const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: healthcheck.mjs <url>\n');
  process.exit(2);
}
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  process.exit(res.ok ? 0 : 1);
} catch (err) {
  process.stderr.write(`${url}: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}
