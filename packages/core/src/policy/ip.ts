import { isIP } from 'node:net';

/** An IP address as a number (IPv4, 32 bits) or a bigint (IPv6, 128 bits). */
export type IpAddress = { readonly family: 4; readonly value: number } | { readonly family: 6; readonly value: bigint };

/** An IP prefix (CIDR) with its network bits already masked. */
export type IpPrefix =
  | { readonly family: 4; readonly network: number; readonly length: number }
  | { readonly family: 6; readonly network: bigint; readonly length: number };

const V4_MAPPED_HIGH = 0xffffn << 32n;

/** Parses a dotted-quad IPv4 address (`10.20.0.1`) into an unsigned 32-bit number. */
export function parseIpv4(text: string): number | undefined {
  let value = 0;
  let part = 0;
  let digits = 0;
  let parts = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = i < text.length ? text.charCodeAt(i) : 46;
    if (c === 46) {
      if (digits === 0 || part > 255 || ++parts > 4) return undefined;
      value = value * 256 + part;
      part = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57 && digits < 3) {
      part = part * 10 + (c - 48);
      digits++;
    } else return undefined;
  }
  return parts === 4 ? value : undefined;
}

/** Parses an IPv6 address (with or without brackets, `::` and a dotted-quad tail) into a bigint. */
export function parseIpv6(text: string): bigint | undefined {
  let addr = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (isIP(addr) !== 6) return undefined;
  const lastColon = addr.lastIndexOf(':');
  const tail = addr.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail);
    if (v4 === undefined) return undefined;
    addr = `${addr.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }
  const halves = addr.split('::');
  const toGroups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = toGroups(halves[0] ?? '');
  const right = halves.length > 1 ? toGroups(halves[1] ?? '') : [];
  const fill = 8 - left.length - right.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  let value = 0n;
  for (const g of [...left, ...new Array<number>(fill).fill(0), ...right]) value = (value << 16n) | BigInt(g);
  return value;
}

/** Formats a 32-bit number as dotted quad. */
export function formatIpv4(value: number): string {
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/**
 * When `value` is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), the IPv4 address it maps;
 * such a URL reaches the IPv4 host, so rules for the IPv4 address apply to it.
 */
export function unmapIpv4(value: bigint): number | undefined {
  return value >> 32n === 0xffffn ? Number(value & 0xffffffffn) : undefined;
}

/** Masks an IPv4 address to its first `length` bits. */
export function maskIpv4(value: number, length: number): number {
  if (length === 0) return 0;
  return (value & (0xffffffff << (32 - length))) >>> 0;
}

/** Masks an IPv6 address to its first `length` bits. */
export function maskIpv6(value: bigint, length: number): bigint {
  if (length === 0) return 0n;
  const shift = BigInt(128 - length);
  return (value >> shift) << shift;
}

/**
 * Parses a CIDR prefix (`10.20.0.0/16`, `fd00::/8`). Host bits are cleared. An IPv4-mapped IPv6
 * prefix of at least 96 bits becomes the IPv4 prefix it covers. Returns undefined when invalid.
 */
export function parseIpPrefix(text: string): IpPrefix | undefined {
  const slash = text.indexOf('/');
  if (slash < 0) return undefined;
  const addr = text.slice(0, slash);
  const bits = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits)) return undefined;
  const length = Number(bits);
  const v4 = parseIpv4(addr);
  if (v4 !== undefined) return length <= 32 ? { family: 4, network: maskIpv4(v4, length), length } : undefined;
  const v6 = parseIpv6(addr);
  if (v6 === undefined || length > 128) return undefined;
  if (length >= 96 && (v6 >> 32n) << 32n === V4_MAPPED_HIGH) {
    return { family: 4, network: maskIpv4(Number(v6 & 0xffffffffn), length - 96), length: length - 96 };
  }
  return { family: 6, network: maskIpv6(v6, length), length };
}

/** True when `address` lies inside `prefix`. */
export function prefixContains(prefix: IpPrefix, address: IpAddress): boolean {
  if (prefix.family === 4 && address.family === 4) return maskIpv4(address.value, prefix.length) === prefix.network;
  if (prefix.family === 6 && address.family === 6) return maskIpv6(address.value, prefix.length) === prefix.network;
  return false;
}

// Module-level scratch space for the URL host parsers below, so that they allocate nothing.
const PARTS = new Float64Array(5);

/** The value of `c` as a digit in `radix` (8, 10 or 16), or -1. */
function digitValue(c: number, radix: number): number {
  const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
  return d < radix ? d : -1;
}

/**
 * The WHATWG URL Standard's IPv4 parser, for a host (`text[from, to)`, no trailing dot) whose last
 * label is a number: `0x7f.1`, `2130706433`, `0177.0.0.1`, `10.20.0x10.1`, `1.2.3.4`. Returns the
 * address, or -1 where the standard fails the URL.
 */
export function parseUrlIpv4(text: string, from: number, to: number): number {
  let count = 0;
  for (let start = from; start <= to;) {
    let end = text.indexOf('.', start);
    if (end < 0 || end > to) end = to;
    if (end === start || count === 4) return -1; // an empty part, or more than four
    let radix = 10;
    let i = start;
    if (text.charCodeAt(i) === 48 && end - i >= 2) {
      if ((text.charCodeAt(i + 1) | 32) === 120) {
        radix = 16;
        i += 2;
      } else {
        radix = 8;
        i += 1;
      }
    }
    let value = 0;
    for (; i < end; i++) {
      const d = digitValue(text.charCodeAt(i), radix);
      if (d < 0) return -1;
      value = Math.min(value * radix + d, 2 ** 40); // past 2^32 it fails anyway; stay exact
    }
    PARTS[count++] = value;
    start = end + 1;
  }
  let address = PARTS[count - 1] ?? 0;
  if (address >= 256 ** (5 - count)) return -1;
  for (let k = 0; k < count - 1; k++) {
    const part = PARTS[k] ?? 0;
    if (part > 255) return -1;
    address += part * 256 ** (3 - k);
  }
  return address;
}

/**
 * The WHATWG URL Standard's IPv6 parser for an address of hex digits and colons only
 * (`text[from, to)`, inside the brackets): writes the eight pieces into `pieces`. Returns false
 * for anything else, an embedded IPv4 address included.
 */
export function parseUrlIpv6(text: string, from: number, to: number, pieces: Uint16Array): boolean {
  pieces.fill(0);
  let index = 0;
  let compress = -1;
  let i = from;
  if (text.charCodeAt(i) === 58) {
    if (text.charCodeAt(i + 1) !== 58 || i + 1 >= to) return false;
    i += 2;
    compress = ++index;
  }
  while (i < to) {
    if (index === 8) return false;
    if (text.charCodeAt(i) === 58) {
      if (compress !== -1) return false;
      i++;
      compress = ++index;
      continue;
    }
    let value = 0;
    let length = 0;
    for (; length < 4 && i < to; length++, i++) {
      const d = digitValue(text.charCodeAt(i), 16);
      if (d < 0) break;
      value = value * 16 + d;
    }
    if (i < to) {
      if (text.charCodeAt(i) !== 58) return false; // a fifth digit, a dot, anything else
      i++;
      if (i === to) return false;
    }
    pieces[index++] = value;
  }
  if (compress !== -1) {
    let swaps = index - compress;
    index = 7;
    while (index !== 0 && swaps > 0) {
      const other = compress + swaps - 1;
      const t = pieces[index] ?? 0;
      pieces[index] = pieces[other] ?? 0;
      pieces[other] = t;
      index--;
      swaps--;
    }
  } else if (index !== 8) return false;
  return true;
}

/** Eight IPv6 pieces written as the WHATWG URL Standard serializes them, with brackets. */
export function formatUrlIpv6(pieces: Uint16Array): string {
  // The first longest run of two or more zero pieces becomes `::`.
  let compress = -1;
  let longest = 1;
  for (let i = 0; i < 8;) {
    if (pieces[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && pieces[j] === 0) j++;
    if (j - i > longest) {
      longest = j - i;
      compress = i;
    }
    i = j;
  }
  let out = '[';
  for (let i = 0; i < 8; i++) {
    if (i === compress) {
      out += i === 0 ? '::' : ':';
      i += longest - 1;
      continue;
    }
    out += (pieces[i] ?? 0).toString(16);
    if (i !== 7) out += ':';
  }
  return `${out}]`;
}

/** Eight IPv6 pieces as one 128-bit number. */
export function ipv6Value(pieces: Uint16Array): bigint {
  const word = (k: number): bigint => BigInt((pieces[k] ?? 0) * 65536 + (pieces[k + 1] ?? 0));
  return (word(0) << 96n) | (word(2) << 64n) | (word(4) << 32n) | word(6);
}
