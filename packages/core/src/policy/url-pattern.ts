import { InvalidInputError } from '../errors.js';
import {
  normalizeHost,
  normalizePercentEncoding,
  type NormalizedHost,
  type RedirectableScheme,
} from './url-normalize.js';

/** How a URL pattern's host part matches. */
export type PatternHost =
  | { readonly kind: 'any' }
  | { readonly kind: 'exact'; readonly host: NormalizedHost }
  | { readonly kind: 'subdomains'; readonly suffix: string };

/** How a path condition matches a URL's path (and query, when it names one). */
export interface PathCondition {
  /** As written, normalized. */
  readonly text: string;
  /** Characters that are not wildcards: the more, the more specific. */
  readonly literalLength: number;
  readonly test: (path: string, query: string) => boolean;
  /**
   * Set when the condition is a literal prefix of the path: `test(path)` is then exactly
   * `path.startsWith(prefix.text)`, followed (when `segment`) by the end of the path or a `/`.
   * The compiled matcher compares it in place instead of calling `test`.
   */
  readonly prefix?: { readonly text: string; readonly segment: boolean };
}

/** A parsed MED-V v2 style URL pattern such as `http://*.contoso.com/app/*`. */
export interface UrlPattern {
  /** undefined: any scheme (`*://` or none written). */
  readonly scheme?: RedirectableScheme;
  readonly host: PatternHost;
  /** undefined: any port. */
  readonly port?: number;
  /** undefined: any path. */
  readonly path?: PathCondition;
}

function patternError(pattern: string, reason: string): InvalidInputError {
  return new InvalidInputError(
    `URL pattern ${JSON.stringify(pattern)} is not valid: ${reason}. Expected [scheme://]host[:port][/path], where scheme may be *, host may be *, *.domain, a name or an address, and * in the path matches anything (example: http://*.contoso.com/app/*).`,
    { details: { pattern, reason } },
  );
}

/**
 * A path prefix on a segment boundary: `/app` matches `/app`, `/app/`, `/app/x`, never `/apple`;
 * `/app/` matches `/app/` and below.
 */
export function pathPrefixCondition(prefix: string): PathCondition {
  const text = normalizePercentEncoding(prefix);
  const slashEnded = text.endsWith('/');
  return {
    text,
    literalLength: text.length,
    test: (path) =>
      path.startsWith(text) && (slashEnded || path.length === text.length || path.charCodeAt(text.length) === 47),
    prefix: { text, segment: !slashEnded },
  };
}

function globCondition(glob: string): PathCondition {
  const text = normalizePercentEncoding(glob);
  const includesQuery = text.includes('?');
  const star = text.indexOf('*');
  const literalLength = text.replace(/\*/g, '').length;
  if (!includesQuery && star === text.length - 1) {
    const head = text.slice(0, -1);
    return { text, literalLength, test: (path) => path.startsWith(head), prefix: { text: head, segment: false } };
  }
  const source = text
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  const re = new RegExp(`^${source}$`, 's');
  return {
    text,
    literalLength,
    test: includesQuery ? (path, query) => re.test(path + query) : (path) => re.test(path),
  };
}

/**
 * Parses a MED-V v2 style URL pattern.
 *
 * - scheme: `http`, `https`, `ftp` or `*`; without `scheme://` any scheme matches.
 * - host: `*` (any host), `*.contoso.com` (subdomains of contoso.com, not contoso.com itself),
 *   a name or an IP address (exactly that host).
 * - port: a number or `*`; without one any port matches.
 * - path: without `*` a path prefix on a segment boundary (`/app` covers `/app/x`, not `/apple`);
 *   with `*` a whole-path wildcard (`*` matches any run of characters, `/` included); `/`, `/*` or
 *   none: any path. A `?` in the path makes the pattern match the query too.
 *
 * Throws InvalidInputError naming the pattern and what is wrong.
 *
 * @example
 * ```ts
 * const p = parseUrlPattern('http://*.contoso.com/app/*');
 * p.host; // { kind: 'subdomains', suffix: 'contoso.com' }
 * ```
 */
export function parseUrlPattern(pattern: string): UrlPattern {
  let rest = pattern.trim();
  if (rest === '') throw patternError(pattern, 'it is empty');
  let scheme: RedirectableScheme | undefined;
  const sep = rest.indexOf('://');
  if (sep >= 0) {
    const s = rest.slice(0, sep).toLowerCase();
    if (s !== '*') {
      if (s !== 'http' && s !== 'https' && s !== 'ftp')
        throw patternError(pattern, `the scheme "${s}" is not http, https, ftp or *`);
      scheme = s;
    }
    rest = rest.slice(sep + 3);
  }
  const slash = rest.search(/[/?]/);
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  let pathText = slash < 0 ? '' : rest.slice(slash);
  if (pathText.startsWith('?')) pathText = `/*${pathText}`;
  if (authority.includes('@')) throw patternError(pattern, 'user info (user@) cannot be matched');
  let hostText = authority;
  let port: number | undefined;
  const portMatch = /^(.*[^:]):(\d+|\*)$/.exec(authority);
  // A bare IPv6 address has several colons and no port; a port needs [brackets] around IPv6.
  const bareIpv6 = !authority.startsWith('[') && authority.indexOf(':') !== authority.lastIndexOf(':');
  if (portMatch && !bareIpv6) {
    hostText = portMatch[1] ?? '';
    const p = portMatch[2] ?? '*';
    if (p !== '*') {
      port = Number(p);
      if (port < 1 || port > 65535) throw patternError(pattern, `the port ${p} is not between 1 and 65535`);
    }
  }
  const host = parsePatternHost(pattern, hostText);
  const path = pathText === '' || pathText === '/' || pathText === '/*' ? undefined : pathCondition(pattern, pathText);
  return { ...(scheme ? { scheme } : {}), host, ...(port !== undefined ? { port } : {}), ...(path ? { path } : {}) };
}

function pathCondition(pattern: string, pathText: string): PathCondition {
  if (!pathText.startsWith('/')) throw patternError(pattern, 'the path must start with /');
  if (pathText.includes('#'))
    throw patternError(pattern, 'a fragment (#) is never sent to a server and cannot be matched');
  return pathText.includes('*') || pathText.includes('?') ? globCondition(pathText) : pathPrefixCondition(pathText);
}

function parsePatternHost(pattern: string, text: string): PatternHost {
  if (text === '*') return { kind: 'any' };
  if (text === '') throw patternError(pattern, 'the host is missing');
  if (text.startsWith('*.')) {
    const suffix = text.slice(2);
    if (suffix.includes('*')) throw patternError(pattern, 'only one wildcard label is allowed, leftmost');
    const h = hostOrThrow(pattern, suffix);
    if (h.kind !== 'name') throw patternError(pattern, '*. must be followed by a domain name, not an address');
    return { kind: 'subdomains', suffix: h.host };
  }
  if (text.includes('*')) {
    throw patternError(
      pattern,
      'a wildcard in the host must be the whole leftmost label (*.contoso.com) or the whole host (*)',
    );
  }
  return { kind: 'exact', host: hostOrThrow(pattern, text) };
}

function hostOrThrow(pattern: string, text: string): NormalizedHost {
  try {
    return normalizeHost(text);
  } catch (err) {
    throw patternError(pattern, (err as InvalidInputError).details['reason'] as string);
  }
}
