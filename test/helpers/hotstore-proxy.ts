import net from 'node:net';
import type { AddressInfo } from 'node:net';

export type ProxyMode = 'up' | 'down' | 'slow';

/**
 * A TCP proxy in front of the shared ClickHouse, so a test can take
 * "ClickHouse" down or make it slow for its own service only, without
 * touching the shared server: 'down' resets every connection, 'slow' delays
 * every chunk sent to ClickHouse by `slowMs`.
 */
export class ClickHouseProxy {
  mode: ProxyMode = 'up';
  private readonly sockets = new Set<net.Socket>();
  private server: net.Server | undefined;

  constructor(
    private readonly target: { host: string; port: number },
    readonly slowMs = 300,
  ) {}

  async start(): Promise<string> {
    this.server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Switches the mode; 'down' also cuts the connections already open. */
  set(mode: ProxyMode): void {
    this.mode = mode;
    if (mode === 'down') for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: net.Socket): void {
    if (this.mode === 'down') {
      client.destroy();
      return;
    }
    const upstream = net.connect(this.target.port, this.target.host);
    this.sockets.add(client).add(upstream);
    let chain = Promise.resolve();
    client.on('data', (chunk) => {
      const delay = this.mode === 'slow' ? this.slowMs : 0;
      chain = chain.then(() => new Promise((r) => setTimeout(r, delay))).then(() => void (upstream.writable && upstream.write(chunk)));
    });
    upstream.pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  }
}
