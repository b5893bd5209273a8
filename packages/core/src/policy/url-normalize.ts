import { InvalidInputError } from '../errors.js';
import { formatIpv4, parseIpv4, parseIpv6, unmapIpv4, type IpAddress } from './ip.js';
import { fastNormalize } from './url-fast.js';

/** The URL schemes web redirection decides on. */
export const REDIRECTABLE_SCHEMES = ['http', 'https', 'ftp'] as const;
/** One of {@link REDIRECTABLE_SCHEMES}. */
export type RedirectableScheme = (typeof REDIRECTABLE_SCHEMES)[number];

const DEFAULT_PORTS: Record<RedirectableScheme, number> = { http: 80, https: 443, ftp: 21 };

/** What a host is: a DNS name, or an IPv4 or IPv6 address. */
export type HostKind = 'name' | 'ipv4' | 'ipv6';

/** A host in the one form rules and URLs are compared in. */
export interface NormalizedHost {
  /** Lower-case ASCII (IDN in punycode), no trailing dot; IPv4 dotted quad; IPv6 `[compressed]`. */
  readonly host: string;
  readonly kind: HostKind;
  /** The address, for IP hosts. */
  readonly ip?: IpAddress;
}

/** A URL in the form the matcher compares: see {@link normalizeUrl}. */
export interface NormalizedUrl extends NormalizedHost {
  /** The canonical URL: no user info, no fragment, no default port. */
  readonly href: string;
  readonly scheme: RedirectableScheme;
  /** The effective port: the explicit one, else the scheme's default. */
  readonly port: number;
  /** The path, dot segments resolved, percent-encoding normalized. */
  readonly path: string;
  /** The query with its `?`, or `''`. */
  readonly query: string;
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * Normalizes percent-encoding (RFC 3986 section 6.2.2): escapes of unreserved characters are
 * decoded (`%7E` is `~`, `%41` is `A`), every other escape is written in upper case (`%2f` is `%2F`).
 */
export function normalizePercentEncoding(text: string): string {
  if (!text.includes('%')) return text;
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`;
  });
}

function urlError(input: string, reason: string): InvalidInputError {
  return new InvalidInputError(
    `Cannot decide on URL ${JSON.stringify(input)}: ${reason}. Expected an absolute http, https or ftp URL such as https://intranet.example/app; the URL was not redirected.`,
    { details: { url: input, reason } },
  );
}

/** Post-processes a WHATWG hostname. Returns an error reason as a string. */
function canonicalHost(hostname: string): NormalizedHost | string {
  if (hostname.startsWith('[')) {
    const v6 = parseIpv6(hostname);
    if (v6 === undefined) return `"${hostname}" is not an IPv6 address`;
    const v4 = unmapIpv4(v6);
    if (v4 !== undefined) return { host: formatIpv4(v4), kind: 'ipv4', ip: { family: 4, value: v4 } };
    return { host: hostname, kind: 'ipv6', ip: { family: 6, value: v6 } };
  }
  let host = hostname;
  if (host.endsWith('.')) {
    host = host.replace(/\.+$/, '');
    // Without its trailing dots the host may now read as a number: parse it again.
    const again = host === '' ? null : URL.parse(`http://${host}/`);
    if (again === null) return host === '' ? 'the host is empty' : `"${hostname}" is not a valid host`;
    host = again.hostname;
  }
  if (host === '') return 'the host is empty';
  if (host.includes('..') || host.startsWith('.')) return `the host "${hostname}" has an empty label`;
  // WHATWG turns a host whose last label is a number into an IPv4 address, so only those can be.
  const last = host.charCodeAt(host.length - 1);
  const v4 = last >= 48 && last <= 57 ? parseIpv4(host) : undefined;
  if (v4 !== undefined) return { host, kind: 'ipv4', ip: { family: 4, value: v4 } };
  return { host, kind: 'name' };
}

/**
 * Normalizes a URL before matching. Scheme and host are lower-cased; an internationalized
 * name becomes punycode; trailing dots on the host go; user info and the fragment are dropped;
 * a default port is the same as none; IPv4 written in odd forms (`0x7f.1`, `2130706433`,
 * `0177.0.0.1`) becomes dotted quad and an IPv4-mapped IPv6 address becomes the IPv4 address;
 * dot segments in the path are resolved and percent-encoding is normalized.
 *
 * Throws InvalidInputError (`details.reason`) for anything that is not an absolute http, https
 * or ftp URL with a host, so that an unparseable URL is never redirected by accident.
 *
 * @example
 * ```ts
 * normalizeUrl('HTTP://User@WWW.Contoso.COM.:80/a/../%7Eb').href; // 'http://www.contoso.com/~b'
 * normalizeUrl('http://0x7f.1/').host; // '127.0.0.1'
 * ```
 */
export function normalizeUrl(input: string | URL): NormalizedUrl {
  if (typeof input === 'string') {
    const fast = fastNormalize(input);
    if (fast !== undefined) return fast;
  }
  return parseAndNormalize(input);
}

/** {@link normalizeUrl} through the WHATWG parser alone (the reference for the fast path). */
export function parseAndNormalize(input: string | URL): NormalizedUrl {
  const text = typeof input === 'string' ? input : input.href;
  const url = typeof input === 'string' ? URL.parse(input.trim()) : input;
  if (url === null) return failUrl(text);
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== 'http' && scheme !== 'https' && scheme !== 'ftp') {
    throw urlError(text, `the scheme "${scheme}" is not one web redirection handles`);
  }
  const host = canonicalHost(url.hostname);
  if (typeof host === 'string') throw urlError(text, host);
  const port = url.port === '' ? DEFAULT_PORTS[scheme] : Number(url.port);
  return build(scheme, host.host, host.kind, host.ip, port, normalizePercentEncoding(url.pathname), url.search);
}

function build(
  scheme: RedirectableScheme,
  host: string,
  kind: HostKind,
  ip: IpAddress | undefined,
  port: number,
  path: string,
  query: string,
): NormalizedUrl {
  const portText = port === DEFAULT_PORTS[scheme] ? '' : `:${port}`;
  // One object shape for every URL keeps the matcher's property reads monomorphic.
  return { host, kind, ip, href: `${scheme}://${host}${portText}${path}${query}`, scheme, port, path, query };
}

function failUrl(text: string): never {
  const trimmed = text.trim();
  if (trimmed === '') throw urlError(text, 'it is empty');
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:/.test(trimmed)) throw urlError(text, 'it has no scheme');
  throw urlError(text, 'it is not a valid URL');
}

/**
 * Normalizes a host written in a rule (`Contoso.COM.`, `bücher.example`, `10.0.0.1`, `::1`,
 * `[::1]`) the same way {@link normalizeUrl} normalizes a URL's host. Throws InvalidInputError
 * when `text` is not a host name or address.
 */
export function normalizeHost(text: string): NormalizedHost {
  const reason = hostSyntaxError(text);
  if (reason !== undefined) {
    throw new InvalidInputError(
      `"${text}" is not a host: ${reason}. Expected a name such as intranet.example or an address such as 10.0.0.1.`,
      {
        details: { host: text, reason },
      },
    );
  }
  const bare = text.includes(':') && !text.startsWith('[') ? `[${text}]` : text;
  const url = URL.parse(`http://${bare}/`);
  const host = url === null ? 'it is not a valid host name' : canonicalHost(url.hostname);
  if (typeof host === 'string') {
    throw new InvalidInputError(
      `"${text}" is not a host: ${host}. Expected a name such as intranet.example or an address such as 10.0.0.1.`,
      {
        details: { host: text, reason: host },
      },
    );
  }
  return host;
}

function hostSyntaxError(text: string): string | undefined {
  if (text.trim() === '') return 'it is empty';
  if (/[\s/?#@\\*%]/.test(text)) return 'it contains a character a host cannot have (space, /, ?, #, @, \\, * or %)';
  if (text.includes(':') && parseIpv6(text) === undefined)
    return 'a host cannot carry a port (use the rule\'s "port" key)';
  return undefined;
}

/** The default port of a scheme. */
export function defaultPort(scheme: RedirectableScheme): number {
  return DEFAULT_PORTS[scheme];
}
