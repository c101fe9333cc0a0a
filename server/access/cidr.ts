/**
 * IP addresses and CIDR ranges, IPv4 and IPv6 alike: every address is held as 16 bytes,
 * IPv4 as its IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so `10.0.0.0/8` matches both
 * `10.1.2.3` and `::ffff:10.1.2.3`, as a dual-stack listener reports it.
 *
 * @module
 */

/** One range of addresses: a 16-byte network and how many leading bits must match. */
export interface CidrRange {
  /** The network address, 16 bytes (IPv4 ranges in IPv4-mapped form). */
  readonly network: Uint8Array;
  /** Leading bits that must match, 0 to 128 (an IPv4 `/n` is `96 + n`). */
  readonly bits: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEXTET = /^[0-9a-f]{1,4}$/i;

/**
 * Parse an IPv4 or IPv6 address into 16 bytes; `undefined` for anything else. Accepts
 * `[::1]` brackets and drops an IPv6 zone (`fe80::1%eth0`).
 *
 * @example
 * ```ts
 * import { parseIp } from "@arcly/stream/access";
 *
 * parseIp("192.0.2.1"); // 16 bytes: ::ffff:192.0.2.1
 * parseIp("2001:db8::1")?.length; // 16
 * parseIp("example.com"); // undefined
 * ```
 */
export function parseIp(text: string): Uint8Array | undefined {
  let s = text.length > 2 && text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  const zone = s.indexOf("%");
  if (zone >= 0 && s.includes(":")) s = s.slice(0, zone);
  const v4 = parseIpv4(s);
  if (v4) return mapped(v4);
  return parseIpv6(s);
}

function parseIpv4(s: string): number[] | undefined {
  const m = IPV4.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? parts : undefined;
}

function mapped(v4: number[]): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

function parseIpv6(s: string): Uint8Array | undefined {
  if (!s.includes(":") || s.length > 45) return undefined;
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  const groups = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i];
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (HEXTET.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !tail) return undefined;
  // an embedded IPv4 address may only end the address
  if (halves.length === 2 && halves[0].includes(".")) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

/**
 * Parse `ADDRESS/BITS` (or a bare address, a range of one). An IPv4 range also matches
 * the IPv4-mapped IPv6 form of its addresses.
 *
 * @throws {SyntaxError} for anything else, e.g. `10.0.0.0/33`.
 *
 * @example
 * ```ts
 * import { inRange, parseCidr, parseIp } from "@arcly/stream/access";
 *
 * const lan = parseCidr("192.168.0.0/16");
 * inRange(parseIp("192.168.7.9")!, lan); // true
 * inRange(parseIp("::ffff:192.168.7.9")!, lan); // true
 * ```
 */
export function parseCidr(text: string): CidrRange {
  const slash = text.lastIndexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(address);
  const v4 = ip !== undefined && parseIpv4(address) !== undefined;
  const max = v4 ? 32 : 128;
  const suffix = slash < 0 ? String(max) : text.slice(slash + 1);
  const bits = /^\d{1,3}$/.test(suffix) ? Number(suffix) : NaN;
  if (!ip || !(bits >= 0 && bits <= max)) {
    throw new SyntaxError(`${JSON.stringify(text)} is not an IPv4 or IPv6 address or CIDR range`);
  }
  const total = v4 ? 96 + bits : bits;
  const network = new Uint8Array(16);
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, total - 8 * i));
    network[i] = ip[i] & (0xff << (8 - keep));
  }
  return { network, bits: total };
}

/**
 * Whether the 16-byte address `ip` (from {@linkcode parseIp}) lies in `range`.
 *
 * @example
 * ```ts
 * import { inRange, parseCidr, parseIp } from "@arcly/stream/access";
 *
 * inRange(parseIp("2001:db8::5")!, parseCidr("2001:db8::/32")); // true
 * ```
 */
export function inRange(ip: Uint8Array, range: CidrRange): boolean {
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, range.bits - 8 * i));
    if (keep === 0) return true;
    const mask = 0xff << (8 - keep) & 0xff;
    if ((ip[i] & mask) !== range.network[i]) return false;
  }
  return true;
}

/**
 * The host part of a peer label as protocols report it, `HOST:PORT` (`"1.2.3.4:5678"`,
 * `"[::1]:5678"`, or an unbracketed `"::1:5678"`), parsed; a label without a port is
 * read as a bare address. `undefined` when it holds no address.
 *
 * @example
 * ```ts
 * import { peerIp } from "@arcly/stream/access";
 *
 * peerIp("[2001:db8::1]:1935")?.length; // 16
 * peerIp("127.0.0.1:50000")?.[15]; // 1
 * ```
 */
export function peerIp(peer: string | undefined): Uint8Array | undefined {
  if (!peer) return undefined;
  if (peer.startsWith("[")) {
    const end = peer.indexOf("]");
    return end < 0 ? undefined : parseIp(peer.slice(1, end));
  }
  const port = /:(\d{1,5})$/.exec(peer);
  if (port) {
    const host = parseIp(peer.slice(0, port.index));
    if (host) return host;
  }
  return parseIp(peer);
}

/**
 * The host part of a peer label (see {@linkcode peerIp}) as text, `""` without one.
 *
 * @example
 * ```ts
 * import { peerHost } from "@arcly/stream/access";
 *
 * peerHost("[::1]:8000"); // "::1"
 * peerHost("192.0.2.1:8000"); // "192.0.2.1"
 * ```
 */
export function peerHost(peer: string | undefined): string {
  if (!peer) return "";
  if (peer.startsWith("[")) return peer.slice(1, Math.max(1, peer.indexOf("]")));
  const port = /:(\d{1,5})$/.exec(peer);
  if (port && parseIp(peer.slice(0, port.index))) return peer.slice(0, port.index);
  return parseIp(peer) ? peer : "";
}
