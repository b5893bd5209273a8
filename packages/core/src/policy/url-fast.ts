import { parseIpv4, type IpAddress } from './ip.js';
import type { HostKind } from './url-normalize.js';

/** The parts of a URL already in canonical form. */
export interface FastParts {
  readonly scheme: 'http' | 'https';
  readonly host: string;
  readonly kind: HostKind;
  readonly ip: IpAddress | undefined;
  /** The explicit port, or -1 for none. */
  readonly port: number;
  /** The raw path (`/` when none), not yet percent-normalized. */
  readonly path: string;
  /** The query with its `?`, `''` when none or empty. */
  readonly query: string;
}

// Characters a canonical path and query may hold as they are (the WHATWG parser leaves them so).
const PATH_OK = new Uint8Array(128);
const QUERY_OK = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%")
  PATH_OK[c.charCodeAt(0)] = 1;
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&()*+,;=:@/?%')
  QUERY_OK[c.charCodeAt(0)] = 1;

const isLowerAlnumOrHyphen = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 45;

/**
 * WHATWG reads a host whose last label is all digits, or 0x and hex digits, as an IPv4 number.
 */
function endsInNumber(host: string): boolean {
  const start = host.lastIndexOf('.') + 1;
  let i = start;
  if (host.charCodeAt(i) === 48 && host.charCodeAt(i + 1) === 120) {
    for (i += 2; i < host.length; i++) {
      const c = host.charCodeAt(i);
      if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
    }
    return true;
  }
  for (; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return i > start;
}

/** A dotted quad without leading zeros: the only IPv4 form the WHATWG parser leaves as it is. */
function canonicalIpv4(host: string): number | undefined {
  for (let i = 0; i < host.length - 1; i++) {
    // A 0 that starts a part and is followed by a digit is a leading zero (octal to WHATWG).
    if (host.charCodeAt(i) === 48 && (i === 0 || host.charCodeAt(i - 1) === 46) && host.charCodeAt(i + 1) !== 46)
      return undefined;
  }
  return parseIpv4(host);
}

/**
 * Splits a URL that is already in canonical form, or nearly (lower-case http or https, an ASCII
 * host that may have upper-case letters and, for a name, a trailing dot, a port that may be the
 * default one, no user info, only characters the WHATWG parser leaves alone), giving what the
 * full normalization gives. Anything else gives undefined, and the caller uses the WHATWG parser.
 */
export function scanCanonicalUrl(text: string): FastParts | undefined {
  let i: number;
  let scheme: 'http' | 'https';
  if (text.startsWith('http://')) {
    scheme = 'http';
    i = 7;
  } else if (text.startsWith('https://')) {
    scheme = 'https';
    i = 8;
  } else return undefined;
  const n = text.length;
  const hostStart = i;
  let labelStart = i;
  let digitsAndDots = true;
  let upper = false;
  let c = 0;
  for (; i < n; i++) {
    c = text.charCodeAt(i);
    if (c === 46) {
      if (i === labelStart) return undefined;
      labelStart = i + 1;
    } else if (isLowerAlnumOrHyphen(c)) {
      if (c < 48 || c > 57) digitsAndDots = false;
    } else if (c >= 65 && c <= 90) {
      // An upper-case ASCII letter: the parser lower-cases it, and so does this.
      upper = true;
      digitsAndDots = false;
    } else break;
  }
  let hostEnd = i;
  if (i === labelStart) {
    // Empty host or a trailing dot. A name's trailing dot is dropped by the normalization anyway;
    // an address with one is left to the full parser.
    if (i === hostStart || digitsAndDots) return undefined;
    hostEnd = i - 1;
  }
  const raw = text.slice(hostStart, hostEnd);
  const host = upper ? raw.toLowerCase() : raw;
  let kind: HostKind = 'name';
  let ip: IpAddress | undefined;
  if (digitsAndDots) {
    const v4 = canonicalIpv4(host);
    if (v4 === undefined) return undefined;
    kind = 'ipv4';
    ip = { family: 4, value: v4 };
  } else if (endsInNumber(host) || host.includes('xn--')) return undefined;
  let port = -1;
  if (i < n && c === 58) {
    const start = ++i;
    for (; i < n; i++) {
      c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
    }
    if (i === start || i - start > 5 || text.charCodeAt(start) === 48) return undefined;
    port = Number(text.slice(start, i));
    if (port > 65535) return undefined;
    if (port === (scheme === 'http' ? 80 : 443)) port = -1; // the parser drops a default port
  }
  let path = '/';
  if (i < n && c === 47) {
    const start = i;
    for (; i < n; i++) {
      c = text.charCodeAt(i);
      if (c >= 128 || PATH_OK[c] !== 1) break;
    }
    path = text.slice(start, i);
  }
  let query = '';
  if (i < n && c === 63) {
    const start = i;
    for (i++; i < n; i++) {
      c = text.charCodeAt(i);
      if (c >= 128 || QUERY_OK[c] !== 1) break;
    }
    if (i - start > 1) query = text.slice(start, i);
  }
  if (i < n && c !== 35) return undefined; // anything but a fragment left over
  return { scheme, host, kind, ip, port, path, query };
}
