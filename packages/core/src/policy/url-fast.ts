import { formatIpv4, formatUrlIpv6, ipv6Value, parseUrlIpv4, parseUrlIpv6, type IpAddress } from './ip.js';
import { hostLabels } from './host-labels.js';
import { hashStep } from './label-trie.js';
import type { HostKind, NormalizedUrl } from './url-normalize.js';

// The common case, a URL already in canonical form or nearly, normalized in one pass without the
// WHATWG parser, building nothing but the result. What it does not know (other schemes, IDN,
// IPv4 inside IPv6, backslashes, spaces and other characters WHATWG escapes or strips, ...) gives
// undefined and goes to the full parser; property tests hold the two to the same answers.

// Characters a canonical path and query may hold as they are (the WHATWG parser leaves them so).
const PATH_OK = new Uint8Array(128);
const QUERY_OK = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%")
  PATH_OK[c.charCodeAt(0)] = 1;
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&()*+,;=:@/?%')
  QUERY_OK[c.charCodeAt(0)] = 1;
// The value of a hex digit, or -1.
const HEX = new Int8Array(128).fill(-1);
for (let d = 0; d < 16; d++) {
  HEX['0123456789abcdef'.charCodeAt(d)] = d;
  HEX['0123456789ABCDEF'.charCodeAt(d)] = d;
}
// Unreserved characters (RFC 3986): an escape of one of them is decoded.
const UNRESERVED = new Uint8Array(128);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[c.charCodeAt(0)] = 1;

const UPPER_HEX = '0123456789ABCDEF';

const hexAt = (text: string, i: number): number => {
  const c = text.charCodeAt(i);
  return c < 128 ? (HEX[c] ?? -1) : -1;
};

/**
 * WHATWG reads a host whose last label (here `text[from, to)`) is all digits, or 0x and hex
 * digits, as an IPv4 number.
 */
function isNumberLabel(text: string, from: number, to: number): boolean {
  let i = from;
  if (text.charCodeAt(i) === 48 && (text.charCodeAt(i + 1) | 32) === 120) {
    for (i += 2; i < to; i++) if (hexAt(text, i) < 0) return false;
    return true;
  }
  for (; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return i > from;
}

/**
 * `text[from, to)` with its escapes normalized as normalizePercentEncoding does: an escape of an
 * unreserved character decoded, any other escape in upper case, a `%` without two hex digits
 * left alone.
 */
function normalizeEscapes(text: string, from: number, to: number): string {
  let out = '';
  let copied = from;
  for (let i = from; i < to - 2; i++) {
    if (text.charCodeAt(i) !== 37) continue;
    const hi = hexAt(text, i + 1);
    const lo = hexAt(text, i + 2);
    if (hi < 0 || lo < 0) continue;
    const code = hi * 16 + lo;
    if (code < 128 && UNRESERVED[code] === 1) {
      out += text.slice(copied, i) + String.fromCharCode(code);
      copied = i + 3;
    } else if (text.charCodeAt(i + 1) >= 97 || text.charCodeAt(i + 2) >= 97) {
      out += `${text.slice(copied, i)}%${UPPER_HEX[hi] ?? ''}${UPPER_HEX[lo] ?? ''}`;
      copied = i + 3;
    }
    i += 2; // like a global replace, go on after the escape
  }
  return copied === from ? text.slice(from, to) : out + text.slice(copied, to);
}

/** True when `segment` is `.` or `..`, escaped or not (`%2e`, `.%2E`, ...). */
function dotSegmentKind(segment: string): 0 | 1 | 2 {
  if (segment.length > 6) return 0;
  const s = segment.toLowerCase();
  if (s === '.' || s === '%2e') return 1;
  if (s === '..' || s === '.%2e' || s === '%2e.' || s === '%2e%2e') return 2;
  return 0;
}

/** `text[from, to)`, a path of plain characters with dot segments, resolved as WHATWG does. */
function resolveDotSegments(text: string, from: number, to: number): string {
  const segments = text.slice(from + 1, to).split('/');
  const out: string[] = [];
  for (let k = 0; k < segments.length; k++) {
    const segment = segments[k] ?? '';
    const kind = dotSegmentKind(segment);
    const last = k === segments.length - 1;
    if (kind === 2) out.pop();
    if (kind === 0) out.push(segment);
    else if (last) out.push(''); // `/a/..` is `/`, `/a/.` is `/a/`
  }
  return `/${out.join('/')}`;
}

/** True when `text[from, to)` is a dotted quad without leading zeros: IPv4 as WHATWG writes it. */
function isPlainQuad(text: string, from: number, to: number): boolean {
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) dots++;
    else if (c < 48 || c > 57) return false;
    // A 0 that starts a part and is followed by a digit is a leading zero (octal to WHATWG).
    else if (c === 48 && (i === from || text.charCodeAt(i - 1) === 46) && i + 1 < to && text.charCodeAt(i + 1) !== 46)
      return false;
  }
  return dots === 3;
}

const PIECES = new Uint16Array(8);

/** Where the authority starting at `from` ends: the first `/`, `?`, `#` or `\`, or the end. */
function authorityEnd(text: string, from: number): number {
  let i = from;
  for (; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35 || c === 92) break;
  }
  return i;
}

/**
 * The URL read again from after its user info (up to the last `@` of the authority, as WHATWG
 * reads it), or undefined when it has none.
 */
function withoutUserinfo(
  text: string,
  scheme: 'http' | 'https',
  hostStart: number,
  from: number,
): NormalizedUrl | undefined {
  const at = text.lastIndexOf('@', authorityEnd(text, from) - 1);
  return at >= hostStart ? fromAuthority(text, scheme, at + 1, true) : undefined;
}

/**
 * Normalizes a URL that is already in canonical form, or nearly: lower-case http or https; user
 * info; a host that is an ASCII name (upper case and a trailing dot allowed), IPv4 in any form
 * WHATWG reads, or IPv6 of hex digits and colons; a port, the default one or with leading zeros;
 * a path with dot segments and escapes; only characters the WHATWG parser leaves alone otherwise.
 * Gives exactly what the full normalization gives, with `href` the input itself when that is
 * already canonical; anything else gives undefined, and the caller uses the WHATWG parser.
 */
export function fastNormalize(text: string): NormalizedUrl | undefined {
  // Character by character: cheaper than startsWith on the strings callers tend to pass.
  if (text.charCodeAt(0) !== 104 || text.charCodeAt(1) !== 116 || text.charCodeAt(2) !== 116) return undefined;
  if (text.charCodeAt(3) !== 112) return undefined;
  const c = text.charCodeAt(4);
  if (c === 58 && text.charCodeAt(5) === 47 && text.charCodeAt(6) === 47) return fromAuthority(text, 'http', 7, false);
  if (c === 115 && text.charCodeAt(5) === 58 && text.charCodeAt(6) === 47 && text.charCodeAt(7) === 47)
    return fromAuthority(text, 'https', 8, false);
  return undefined;
}

function fromAuthority(
  text: string,
  scheme: 'http' | 'https',
  hostStart: number,
  afterUserinfo: boolean,
): NormalizedUrl | undefined {
  const n = text.length;
  let i = hostStart;
  let c = 0;
  // Whether the input is its own canonical form; every change clears it.
  let canonical = !afterUserinfo;
  let host: string;
  let kind: HostKind = 'name';
  let ip: IpAddress | undefined;
  if (text.charCodeAt(i) === 91) {
    const close = text.indexOf(']', i);
    if (close < 0 || !parseUrlIpv6(text, i + 1, close, PIECES)) return undefined;
    i = close + 1;
    c = i < n ? text.charCodeAt(i) : 0;
    if (
      PIECES[0] === 0 &&
      PIECES[1] === 0 &&
      PIECES[2] === 0 &&
      PIECES[3] === 0 &&
      PIECES[4] === 0 &&
      PIECES[5] === 0xffff
    ) {
      // IPv4-mapped: the IPv4 address is the host.
      const v4 = (PIECES[6] ?? 0) * 65536 + (PIECES[7] ?? 0);
      host = formatIpv4(v4);
      kind = 'ipv4';
      ip = { family: 4, value: v4 };
      canonical = false;
    } else {
      host = formatUrlIpv6(PIECES);
      kind = 'ipv6';
      ip = { family: 6, value: ipv6Value(PIECES) };
      if (canonical && (host.length !== i - hostStart || !text.startsWith(host, hostStart))) canonical = false;
    }
  } else {
    let labelStart = i;
    let lastLabel = i;
    let upper = false;
    let punycode = false;
    // The labels' hashes go to the matcher, which then need not read the host again.
    let hash = 0;
    hostLabels.begin();
    for (; i < n; i++) {
      c = text.charCodeAt(i);
      if (c === 46) {
        if (i === labelStart) return undefined; // an empty label
        hostLabels.add(hash, i - hostStart);
        hash = 0;
        lastLabel = labelStart;
        labelStart = i + 1;
        continue;
      }
      if ((c >= 97 && c <= 122) || (c >= 48 && c <= 57)) {
        // as it is
      } else if (c === 45) {
        // A label that starts with xn-- is punycode, which WHATWG checks: left to it.
        if (i === labelStart + 3 && text.charCodeAt(i - 1) === 45) {
          punycode ||= (text.charCodeAt(labelStart) | 32) === 120 && (text.charCodeAt(labelStart + 1) | 32) === 110;
        }
      } else if (c >= 65 && c <= 90) {
        upper = true; // the parser lower-cases it, and so does this
      } else break;
      hash = hashStep(hash, c | 32); // the character in lower case
    }
    let hostEnd = i;
    if (i === labelStart) {
      // No host: only user info (`http://@host/`) leaves one further on.
      if (i === hostStart) return !afterUserinfo && c === 64 ? withoutUserinfo(text, scheme, hostStart, i) : undefined;
      hostEnd = i - 1; // the trailing dot, which the normalization drops
    } else {
      hostLabels.add(hash, i - hostStart);
      lastLabel = labelStart;
    }
    if (hostEnd !== i || upper) canonical = false;
    host = upper ? text.slice(hostStart, hostEnd).toLowerCase() : text.slice(hostStart, hostEnd);
    if (isNumberLabel(text, lastLabel, hostEnd)) {
      const v4 = parseUrlIpv4(host, 0, host.length);
      if (v4 < 0) return undefined;
      kind = 'ipv4';
      ip = { family: 4, value: v4 };
      if (!isPlainQuad(host, 0, host.length)) {
        host = formatIpv4(v4);
        canonical = false;
      }
    } else if (punycode) return undefined;
    else hostLabels.finish(host);
  }
  const defaultPort = scheme === 'http' ? 80 : 443;
  let port = defaultPort;
  if (i < n && c === 58) {
    const start = ++i;
    let value = 0;
    for (; i < n; i++) {
      c = text.charCodeAt(i);
      if (c < 48 || c > 57) break;
      value = Math.min(value * 10 + (c - 48), 65536);
    }
    if (value > 65535) return undefined;
    // The parser drops an empty or default port and leading zeros.
    if (i === start || value === defaultPort || text.charCodeAt(start) === 48) canonical = false;
    if (i > start) port = value;
  }
  if (i < n && c !== 47 && c !== 63 && c !== 35) {
    // Not the end of the authority: what came before was user info when a `@` follows.
    return afterUserinfo ? undefined : withoutUserinfo(text, scheme, hostStart, i);
  }
  let path = '/';
  if (i < n && c === 47) {
    const start = i;
    let segment = i + 1;
    let escapes = false;
    let dots = false;
    for (i++; i < n; i++) {
      c = text.charCodeAt(i);
      if (c === 47) {
        if (text.charCodeAt(segment) === 46 || text.charCodeAt(segment) === 37)
          dots ||= dotSegmentKind(text.slice(segment, i)) !== 0;
        segment = i + 1;
      } else if (c === 37) escapes = true;
      else if (c >= 128 || PATH_OK[c] !== 1) break;
    }
    if (text.charCodeAt(segment) === 46 || text.charCodeAt(segment) === 37)
      dots ||= dotSegmentKind(text.slice(segment, i)) !== 0;
    if (dots) {
      const resolved = resolveDotSegments(text, start, i);
      path = escapes ? normalizeEscapes(resolved, 0, resolved.length) : resolved;
      canonical = false;
    } else if (escapes) {
      path = normalizeEscapes(text, start, i);
      if (path.length !== i - start || !text.startsWith(path, start)) canonical = false;
    } else path = text.slice(start, i);
  } else canonical = false; // the parser writes the root path
  let query = '';
  if (i < n && c === 63) {
    const start = i;
    for (i++; i < n; i++) {
      c = text.charCodeAt(i);
      if (c >= 128 || QUERY_OK[c] !== 1) break;
    }
    if (i - start > 1) query = text.slice(start, i);
    else canonical = false; // an empty query is dropped
  }
  if (i < n) {
    if (c !== 35) return undefined; // anything but a fragment left over
    canonical = false;
  }
  const href = canonical ? text : `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}${path}${query}`;
  // The same shape, in the same order, as the full normalization builds.
  return { host, kind, ip, href, scheme, port, path, query };
}
