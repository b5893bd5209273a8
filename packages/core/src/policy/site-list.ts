import { InvalidInputError } from '../errors.js';
import { CHECK_ONLY_REF, compileUrlRule, type UrlRuleInput } from './url-rules.js';
import { parseXml, type XmlElement } from './xml.js';

/** One `<site>` of an Enterprise Mode Site List that became a rule. */
export interface ImportedSite {
  /** The `url` attribute as written. */
  readonly url: string;
  /** 1-based line of the `<site>` element. */
  readonly line: number;
  /** The `<open-in>` value as written (`IE11`, `MSEdge`, `None`), or `none` when absent. */
  readonly openIn: string;
  readonly rule: UrlRuleInput;
}

/** A `<site>` that could not become a rule, and why. */
export interface UnmappedSite {
  readonly url: string;
  readonly line: number;
  readonly reason: string;
}

/** The result of {@link importEnterpriseSiteList}. */
export interface SiteListImport {
  /** The list's `version` attribute. */
  readonly version?: string;
  readonly sites: readonly ImportedSite[];
  readonly unmapped: readonly UnmappedSite[];
}

function childText(site: XmlElement, name: string): string | undefined {
  const el = site.children.find((c) => c.name === name);
  return el === undefined ? undefined : el.text.trim();
}

/** Maps a site's `url` attribute to a rule's match, path, scheme and port; a string is a reason. */
function mapUrl(url: string): Omit<UrlRuleInput, 'target' | 'direction'> | string {
  let rest = url.trim();
  if (rest === '') return 'the url attribute is empty';
  if (rest.includes('*'))
    return 'wildcards are not part of the site list format; write the domain (it covers its subdomains)';
  let scheme: 'http' | 'https' | undefined;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(rest);
  if (m) {
    const s = (m[1] ?? '').toLowerCase();
    if (s !== 'http' && s !== 'https') return `the scheme ${s} is not http or https`;
    scheme = s;
    rest = rest.slice(m[0].length);
  }
  if (/[?#]/.test(rest)) return 'a query or fragment cannot be matched; list the path only';
  const slash = rest.indexOf('/');
  const authority = slash < 0 ? rest : rest.slice(0, slash);
  let path = slash < 0 ? '' : rest.slice(slash);
  if (path === '/') path = '';
  let host = authority;
  let port: number | undefined;
  const pm = /^(.*[^:]):(\d+)$/.exec(authority);
  if (pm && (authority.startsWith('[') || authority.indexOf(':') === authority.lastIndexOf(':'))) {
    host = pm[1] ?? '';
    port = Number(pm[2]);
  }
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  const isAddress = /^[\d.]+$/.test(bare) || bare.includes(':');
  return {
    match: isAddress ? { host: bare } : { domainSuffix: host },
    ...(path !== '' ? { pathPrefix: path } : {}),
    ...(scheme ? { scheme } : {}),
    ...(port !== undefined ? { port } : {}),
  };
}

/**
 * Imports Microsoft's Enterprise Mode Site List v2 (`<site-list>` of `<site url>` with
 * `<open-in>`) as web redirection rules, so an enterprise can reuse the list it already keeps.
 *
 * - `<open-in>IE11</open-in>`: the site needs the legacy browser, so it opens in the guest, from
 *   either side.
 * - `<open-in>MSEdge</open-in>`: it opens on the host, from either side.
 * - `<open-in>None</open-in>` or none given: it stays in the browser it was opened in; as a rule,
 *   URLs opened on the host stay there (it can carve an exception out of a wider IE11 entry).
 * - A site's `url` (`contoso.com/travel`, `www.contoso.com:8080`, `10.1.2.3`) covers the domain
 *   and its subdomains, and a path covers the paths below it.
 *
 * Entries that cannot be mapped (a wildcard, a query, an unknown `open-in`, a bad host, a
 * repeated url) are listed in `unmapped` with the reason; the rest are imported. A v1 list
 * (`<rules>`) or XML that is not a site list throws InvalidInputError.
 *
 * @example
 * ```ts
 * const { sites, unmapped } = importEnterpriseSiteList(
 *   '<site-list version="1"><site url="contoso.com/travel"><open-in>IE11</open-in></site></site-list>',
 * );
 * sites[0]?.rule; // { match: { domainSuffix: 'contoso.com' }, pathPrefix: '/travel', target: 'guest', direction: 'any' }
 * ```
 */
export function importEnterpriseSiteList(xml: string, options: { source?: string } = {}): SiteListImport {
  const source = options.source ?? '<site list>';
  const root = parseXml(xml, source);
  if (root.name === 'rules') {
    throw new InvalidInputError(
      `${source} is an Enterprise Mode Site List v1 (<rules>); Tandem imports v2 (<site-list>). Convert it with the Enterprise Mode Site List Manager (schema v.2) and import the result.`,
      { details: { file: source, reason: 'site list v1' } },
    );
  }
  if (root.name !== 'site-list') {
    throw new InvalidInputError(
      `${source} is not an Enterprise Mode Site List: its root element is <${root.name}>, expected <site-list>.`,
      {
        details: { file: source, reason: `root element ${root.name}` },
      },
    );
  }
  const sites: ImportedSite[] = [];
  const unmapped: UnmappedSite[] = [];
  const seen = new Map<string, number>();
  for (const el of root.children) {
    if (el.name !== 'site') continue;
    const url = el.attributes['url'];
    if (url === undefined) {
      unmapped.push({ url: '', line: el.line, reason: 'the <site> has no url attribute' });
      continue;
    }
    const openIn = childText(el, 'open-in') ?? 'none';
    const open = openIn.toLowerCase();
    let target: 'host' | 'guest';
    let direction: 'any' | 'host-to-guest' = 'any';
    if (open === 'ie11') target = 'guest';
    else if (open === 'msedge') target = 'host';
    else if (open === 'none' || open === '') {
      target = 'host';
      direction = 'host-to-guest';
    } else {
      unmapped.push({ url, line: el.line, reason: `<open-in>${openIn}</open-in> is not IE11, MSEdge or None` });
      continue;
    }
    const mapped = mapUrl(url);
    if (typeof mapped === 'string') {
      unmapped.push({ url, line: el.line, reason: mapped });
      continue;
    }
    const rule: UrlRuleInput = { ...mapped, direction, target };
    try {
      compileUrlRule(rule, CHECK_ONLY_REF);
    } catch (err) {
      const reason = err instanceof InvalidInputError ? String(err.details['reason']) : String(err);
      unmapped.push({ url, line: el.line, reason });
      continue;
    }
    const key = url.trim().toLowerCase();
    const first = seen.get(key);
    if (first !== undefined) {
      unmapped.push({ url, line: el.line, reason: `repeats the site on line ${first}, which decides` });
      continue;
    }
    seen.set(key, el.line);
    sites.push({ url, line: el.line, openIn: childText(el, 'open-in') ?? 'none', rule });
  }
  const version = root.attributes['version'];
  return { ...(version !== undefined ? { version } : {}), sites, unmapped };
}
