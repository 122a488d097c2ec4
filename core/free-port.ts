import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';

/** A TCP port free on `host` right now: the OS picks it (another process may still take it before it is used; rare). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
