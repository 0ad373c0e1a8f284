/**
 * Outbound URL checks for addresses that administrators or apps choose
 * (callback URLs): Twofold must not become a way to reach its own network
 * (SSRF). A URL is refused when its host is, or resolves to, an address
 * that is not publicly routable: private, loopback, link-local, CGNAT,
 * unspecified, multicast, reserved, or one of those wrapped in IPv6
 * (IPv4-mapped, NAT64, 6to4).
 */
import { lookup as dnsLookup } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';

export type AddressKind =
  | 'public' | 'private' | 'loopback' | 'link-local' | 'unspecified' | 'cgnat' | 'multicast' | 'reserved';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Every address a host name resolves to. @throws Error when it does not resolve. */
export type ResolveAll = (hostname: string) => Promise<ResolvedAddress[]>;

export interface UrlPolicy {
  /**
   * Development and tests: allow http, and loopback addresses, for the host
   * names localhost, 127.0.0.1 and [::1]. Never in production.
   */
  allowLoopbackHttp: boolean;
  /** DNS resolution; node:dns (every address) when absent. Tests pass a fake. */
  resolve?: ResolveAll;
}

/** Why a URL was refused; the message is safe to show to the administrator who gave it. */
export class UnsafeUrlError extends Error {
  override readonly name = 'UnsafeUrlError';
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
const MAX_URL = 2000;

type Range = readonly [prefix: bigint, bits: number, kind: AddressKind];

/** IPv4 ranges that are not publicly routable (RFC 6890 and friends). */
const V4: Range[] = [
  [v4('0.0.0.0'), 8, 'unspecified'],
  [v4('10.0.0.0'), 8, 'private'],
  [v4('100.64.0.0'), 10, 'cgnat'],
  [v4('127.0.0.0'), 8, 'loopback'],
  [v4('169.254.0.0'), 16, 'link-local'],
  [v4('172.16.0.0'), 12, 'private'],
  [v4('192.0.0.0'), 24, 'reserved'],
  [v4('192.0.2.0'), 24, 'reserved'],
  [v4('192.88.99.0'), 24, 'reserved'],
  [v4('192.168.0.0'), 16, 'private'],
  [v4('198.18.0.0'), 15, 'reserved'],
  [v4('198.51.100.0'), 24, 'reserved'],
  [v4('203.0.113.0'), 24, 'reserved'],
  [v4('224.0.0.0'), 4, 'multicast'],
  [v4('240.0.0.0'), 4, 'reserved'],
];

/** IPv6 ranges, checked after unwrapping embedded IPv4 (below). */
const V6: Range[] = [
  [0n, 128, 'unspecified'],
  [1n, 128, 'loopback'],
  [0n, 96, 'reserved'], // IPv4-compatible (deprecated)
  [v6('64:ff9b:1::'), 48, 'private'], // local-use NAT64
  [v6('100::'), 64, 'reserved'], // discard
  [v6('2001::'), 23, 'reserved'], // IETF protocol assignments
  [v6('2001:db8::'), 32, 'reserved'], // documentation
  [v6('fc00::'), 7, 'private'], // unique local
  [v6('fe80::'), 10, 'link-local'],
  [v6('fec0::'), 10, 'private'], // site-local (deprecated)
  [v6('ff00::'), 8, 'multicast'],
];

function v4(address: string): bigint {
  return address.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
}

/** An IPv6 address (any valid textual form, zone id ignored) as a 128-bit number. */
function v6(address: string): bigint {
  let text = address.split('%')[0]!.toLowerCase();
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const n = v4(dotted[2]!);
    text = `${dotted[1]}${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const words = (s: string | undefined) => (s ? s.split(':').map((w) => BigInt(Number.parseInt(w, 16))) : []);
  const left = words(head);
  const right = words(tail);
  const all = tail === undefined ? left : [...left, ...new Array<bigint>(8 - left.length - right.length).fill(0n), ...right];
  return all.reduce((n, w) => (n << 16n) | w, 0n);
}

function inRange(n: bigint, width: number, [prefix, bits]: Range): boolean {
  const shift = BigInt(width - bits);
  return n >> shift === prefix >> shift;
}

function classifyV4(n: bigint): AddressKind {
  return V4.find((r) => inRange(n, 32, r))?.[2] ?? 'public';
}

/**
 * What kind of address `address` is (IPv4 or IPv6 text, brackets allowed).
 * IPv4 inside IPv6 (::ffff:a.b.c.d, 64:ff9b::a.b.c.d, 2002:aabb:ccdd::)
 * is judged by the IPv4 address it carries: ::ffff:127.0.0.1 is loopback.
 * @throws Error when `address` is not an IP address.
 */
export function classifyAddress(address: string): AddressKind {
  const bare = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const version = isIP(bare);
  if (version === 4) return classifyV4(v4(bare));
  if (version !== 6) throw new Error(`${address} is not an IP address`);
  const n = v6(bare);
  const low32 = n & 0xffffffffn;
  if (n >> 32n === 0xffffn) return classifyV4(low32); // IPv4-mapped
  if (n >> 32n === v6('64:ff9b::') >> 32n) return classifyV4(low32); // NAT64 well-known prefix
  if (n >> 112n === 0x2002n) return classifyV4((n >> 80n) & 0xffffffffn); // 6to4
  return V6.find((r) => inRange(n, 128, r))?.[2] ?? 'public';
}

const isLoopbackName = (hostname: string) => LOOPBACK_NAMES.has(hostname);

/** @throws UnsafeUrlError when an address of `hostname` may not be reached under `policy`. */
function assertAddress(hostname: string, address: string, policy: UrlPolicy): void {
  const kind = classifyAddress(address);
  if (kind === 'public') return;
  if (kind === 'loopback' && policy.allowLoopbackHttp && isLoopbackName(hostname)) return;
  // Deliberately the kind only: the resolved address of a name the caller
  // chose is internal network information.
  throw new UnsafeUrlError(`The URL's host is a ${kind} address, which may not be used.`);
}

/**
 * The syntactic checks, and the address check for a host that is an IP
 * literal: absolute https (http only to a loopback name when allowed), no
 * credentials, no fragment.
 * @returns the parsed URL
 * @throws UnsafeUrlError saying what is wrong
 */
export function checkUrl(raw: string, policy: UrlPolicy): URL {
  let url: URL;
  try { url = new URL(raw); } catch { throw new UnsafeUrlError('The URL is not an absolute URL.'); }
  if (raw.length > MAX_URL) throw new UnsafeUrlError(`The URL is longer than ${MAX_URL} characters.`);
  const loopbackHttp = url.protocol === 'http:' && policy.allowLoopbackHttp && isLoopbackName(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) {
    throw new UnsafeUrlError(policy.allowLoopbackHttp ? 'The URL must be https (http only for localhost).' : 'The URL must be https.');
  }
  if (url.username || url.password) throw new UnsafeUrlError('The URL may not contain a user name or password.');
  if (url.hash || raw.includes('#')) throw new UnsafeUrlError('The URL may not contain a fragment.');
  const literal = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (isIP(literal)) assertAddress(url.hostname, literal, policy);
  return url;
}

const systemResolve: ResolveAll = (hostname) => new Promise((resolve, reject) => {
  dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) => {
    if (err) reject(err);
    else resolve(addresses.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 })));
  });
});

/** Every address of `hostname`, each checked. @throws UnsafeUrlError */
async function resolveChecked(hostname: string, policy: UrlPolicy): Promise<ResolvedAddress[]> {
  const literal = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  const version = isIP(literal);
  if (version) {
    assertAddress(hostname, literal, policy);
    return [{ address: literal, family: version === 6 ? 6 : 4 }];
  }
  let addresses: ResolvedAddress[];
  try {
    addresses = await (policy.resolve ?? systemResolve)(hostname);
  } catch {
    throw new UnsafeUrlError('The URL\'s host name does not resolve.');
  }
  if (addresses.length === 0) throw new UnsafeUrlError('The URL\'s host name does not resolve.');
  // Every address, not just the first: a name with one public and one
  // private address would otherwise reach the private one some of the time.
  for (const a of addresses) assertAddress(hostname, a.address, policy);
  return addresses;
}

/**
 * The full check for a URL being registered: {@link checkUrl}, then every
 * address its host name resolves to.
 * @throws UnsafeUrlError saying what is wrong
 */
export async function assertPublicUrl(raw: string, policy: UrlPolicy): Promise<URL> {
  const url = checkUrl(raw, policy);
  await resolveChecked(url.hostname, policy);
  return url;
}

/**
 * A `lookup` for node:http(s) that resolves, checks every address and only
 * then lets the socket connect, to one of the addresses it checked. Checking
 * at connection time closes the gap between a check and the connection that
 * DNS rebinding would use (a name that resolves to a public address when
 * registered and a private one when delivered to).
 */
export function guardedLookup(policy: UrlPolicy): LookupFunction {
  return (hostname, options, callback) => {
    resolveChecked(hostname, policy).then((addresses) => {
      const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
      if (wanted.length === 0) {
        callback(Object.assign(new Error(`no IPv${options.family} address for ${hostname}`), { code: 'ENOTFOUND' }), '', 4);
      } else if (options.all) {
        (callback as unknown as (err: null, addresses: ResolvedAddress[]) => void)(null, wanted);
      } else {
        callback(null, wanted[0]!.address, wanted[0]!.family);
      }
    }, (err: Error) => callback(err, '', 4));
  };
}
