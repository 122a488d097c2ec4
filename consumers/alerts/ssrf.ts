import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { AuditlineError } from '../../core/errors.js';

/** Ranges a webhook may not reach unless allowed: loopback, private, link-local, CGNAT, unspecified, multicast, reserved. */
const FORBIDDEN: [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'],
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'],
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['224.0.0.0', 3, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  // IPv6 forms that carry an IPv4 address (any of them may reach a private one through a gateway): IPv4-compatible,
  // IPv4-translated, NAT64 (well-known and local-use prefixes), 6to4. IPv4-mapped (::ffff:0:0/96) is not listed:
  // BlockList checks a mapped address as the IPv4 address it carries (and would take the range for all of IPv4).
  ['::', 96, 'ipv6'],
  ['::ffff:0:0:0', 96, 'ipv6'],
  ['64:ff9b::', 96, 'ipv6'],
  ['64:ff9b:1::', 48, 'ipv6'],
  ['2002::', 16, 'ipv6'],
  ['100::', 64, 'ipv6'],
  ['fc00::', 7, 'ipv6'],
  ['fe80::', 10, 'ipv6'],
  ['fec0::', 10, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
];

/**
 * Decides which addresses webhooks may reach (docs/alerts.md, "SSRF"). The
 * host is resolved and EVERY address checked; the request then connects to
 * the checked address (no second lookup a rebinding DNS could answer
 * differently). `allowed` lists CIDRs exempted, e.g. `127.0.0.1/32` for
 * local use and tests (AUDITLINE_ALERTS_ALLOWED_TARGETS).
 */
export class TargetPolicy {
  private readonly forbidden = new BlockList();
  private readonly allowed = new BlockList();

  constructor(allowedCidrs: readonly string[] = []) {
    for (const [addr, prefix, type] of FORBIDDEN) this.forbidden.addSubnet(addr, prefix, type);
    for (const cidr of allowedCidrs) {
      const [addr, bits] = cidr.split('/');
      const type = isIP(addr ?? '') === 6 ? 'ipv6' : 'ipv4';
      this.allowed.addSubnet(addr!, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
    }
  }

  /** True when `address` (an IP) may be called. */
  permits(address: string): boolean {
    const v6 = isIP(address) === 6;
    // IPv4-mapped IPv6 (::ffff:127.0.0.1) is checked as the IPv4 address it is.
    const mapped = v6 ? /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1] : undefined;
    const ip = mapped ?? address;
    const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
    if (this.allowed.check(ip, type)) return true;
    return !this.forbidden.check(ip, type);
  }

  /** Resolves the URL's host and returns the address to connect to; SSRF_REFUSED when any address is forbidden. */
  async resolve(url: URL, channel: string): Promise<{ address: string; family: 4 | 6 }> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: { address: string; family: number }[];
    if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
    else {
      try {
        addresses = await lookup(host, { all: true, verbatim: true });
      } catch (err) {
        throw new AuditlineError('ALERT_DELIVERY_FAILED', `channel ${channel}: cannot resolve the webhook host (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { retriable: true, details: { channel } });
      }
    }
    const refused = addresses.find((a) => !this.permits(a.address));
    if (refused || addresses.length === 0) {
      throw new AuditlineError('SSRF_REFUSED', `channel ${channel}: the webhook resolves to ${refused?.address ?? 'no address'}, a loopback, private or link-local address; refused (allow it with AUDITLINE_ALERTS_ALLOWED_TARGETS)`, {
        details: { channel },
      });
    }
    return { address: addresses[0]!.address, family: addresses[0]!.family === 6 ? 6 : 4 };
  }
}
