import type { z } from 'zod';
import { InvalidInputError } from '../errors.js';
import type { UrlMatchSchema, UrlRuleSchema } from '../workspace/policy-schema.js';
import { parseIpPrefix, type IpPrefix } from './ip.js';
import { normalizeHost, type NormalizedHost, type NormalizedUrl, type RedirectableScheme } from './url-normalize.js';
import { parseUrlPattern, pathPrefixCondition, type PathCondition } from './url-pattern.js';
import type { CrossingDirection, RuleRef, Side } from './types.js';

/** A web redirection rule as written (after schema defaults). */
export type UrlRule = z.output<typeof UrlRuleSchema>;
/** A rule's `match` as written. */
export type UrlMatch = z.output<typeof UrlMatchSchema>;
/** A rule as written before defaults (what callers may pass in code). */
export type UrlRuleInput = z.input<typeof UrlRuleSchema>;

/** What a compiled rule matches on the host. */
export type RuleHost =
  | { readonly kind: 'exact'; readonly host: string }
  | { readonly kind: 'suffix'; readonly suffix: string; readonly dotted: string; readonly labels: number }
  | { readonly kind: 'subdomains'; readonly suffix: string; readonly dotted: string; readonly labels: number }
  | { readonly kind: 'prefix'; readonly prefix: IpPrefix }
  | { readonly kind: 'local' }
  | { readonly kind: 'any' };

/** A rule ready for matching. */
export interface CompiledUrlRule {
  readonly ref: RuleRef;
  readonly target: Side;
  readonly direction: CrossingDirection | 'any';
  readonly host: RuleHost;
  readonly scheme?: RedirectableScheme;
  readonly port?: number;
  readonly path?: PathCondition;
  /** Larger is more specific; see docs/policy.md, "Precedence". */
  readonly specificity: number;
}

function ruleError(reason: string, rule: unknown): InvalidInputError {
  return new InvalidInputError(`Web redirection rule ${JSON.stringify(rule)} is not valid: ${reason}.`, {
    details: { rule, reason },
  });
}

function reasonOf(err: unknown): string {
  return err instanceof InvalidInputError && typeof err.details['reason'] === 'string'
    ? err.details['reason']
    : String(err);
}

function nameHost(value: string, key: string): NormalizedHost {
  const text = value.startsWith('.') ? value.slice(1) : value;
  if (text.startsWith('*')) {
    throw new InvalidInputError(
      `"${value}" is not a domain for ${key}: write the domain alone (contoso.com); use subdomainsOf for subdomains only.`,
      {
        details: { value, reason: `${key} takes a domain without a wildcard (write contoso.com, or use subdomainsOf)` },
      },
    );
  }
  return normalizeHost(text);
}

interface MatchPart {
  host: RuleHost;
  scheme?: RedirectableScheme;
  port?: number;
  path?: PathCondition;
}

function labelCount(host: string): number {
  let n = 1;
  for (let i = 0; i < host.length; i++) if (host.charCodeAt(i) === 46) n++;
  return n;
}

/** Compiles a rule's `match` alone. Throws InvalidInputError with `details.reason`. */
export function compileUrlMatch(match: UrlMatch): MatchPart {
  if ('host' in match) return { host: { kind: 'exact', host: normalizeHost(match.host).host } };
  if ('domainSuffix' in match || 'subdomainsOf' in match) {
    const key = 'domainSuffix' in match ? 'domainSuffix' : 'subdomainsOf';
    const value = 'domainSuffix' in match ? match.domainSuffix : match.subdomainsOf;
    const h = nameHost(value, key);
    if (h.kind !== 'name') {
      throw new InvalidInputError(`"${value}" is an address: ${key} takes a domain name; use ipPrefix for addresses.`, {
        details: { value, reason: `${key} takes a domain name, not an address (use ipPrefix)` },
      });
    }
    const labels = labelCount(h.host);
    const dotted = `.${h.host}`;
    return {
      host:
        key === 'domainSuffix'
          ? { kind: 'suffix', suffix: h.host, dotted, labels }
          : { kind: 'subdomains', suffix: h.host, dotted, labels },
    };
  }
  if ('ipPrefix' in match) {
    const prefix = parseIpPrefix(match.ipPrefix);
    if (!prefix) {
      throw new InvalidInputError(`"${match.ipPrefix}" is not a CIDR prefix such as 10.20.0.0/16.`, {
        details: {
          value: match.ipPrefix,
          reason: 'expected an IPv4 or IPv6 prefix in CIDR notation, such as 10.20.0.0/16',
        },
      });
    }
    return { host: { kind: 'prefix', prefix } };
  }
  if ('localNames' in match) return { host: { kind: 'local' } };
  const p = parseUrlPattern(match.url);
  const host: RuleHost =
    p.host.kind === 'any'
      ? { kind: 'any' }
      : p.host.kind === 'exact'
        ? { kind: 'exact', host: p.host.host.host }
        : { kind: 'subdomains', suffix: p.host.suffix, dotted: `.${p.host.suffix}`, labels: labelCount(p.host.suffix) };
  return {
    host,
    ...(p.scheme ? { scheme: p.scheme } : {}),
    ...(p.port !== undefined ? { port: p.port } : {}),
    ...(p.path ? { path: p.path } : {}),
  };
}

/** Describes a rule's match in words (`domainSuffix intranet.example`). */
export function describeMatch(match: UrlMatch): string {
  if ('host' in match) return `host ${match.host}`;
  if ('domainSuffix' in match) return `domainSuffix ${match.domainSuffix}`;
  if ('subdomainsOf' in match) return `subdomainsOf ${match.subdomainsOf}`;
  if ('ipPrefix' in match) return `ipPrefix ${match.ipPrefix}`;
  if ('localNames' in match) return 'localNames';
  return `url ${match.url}`;
}

function hostSpecificity(host: RuleHost): number {
  switch (host.kind) {
    case 'exact':
      return 1000;
    case 'subdomains':
      return 2 * host.labels + 3;
    case 'suffix':
      return 2 * host.labels + 2;
    case 'prefix':
      return host.prefix.length + 2;
    case 'local':
      return 1;
    case 'any':
      return 0;
  }
}

/** A placeholder reference for compiling a rule only to check it (no decision will name it). */
export const CHECK_ONLY_REF: RuleRef = {
  layer: 'package-default',
  source: '',
  path: '',
  label: '',
  text: '',
  appliesTo: 'everyone',
};

/**
 * Compiles one rule. `ref` names it in decisions. Throws InvalidInputError when the rule cannot
 * match anything (a bad host, pattern or prefix; a pattern scheme or port that contradicts the
 * rule's own `scheme` or `port`).
 */
export function compileUrlRule(rule: UrlRuleInput, ref: RuleRef): CompiledUrlRule {
  let part: MatchPart;
  try {
    part = compileUrlMatch(rule.match);
  } catch (err) {
    throw ruleError(reasonOf(err), rule);
  }
  if (rule.scheme !== undefined && part.scheme !== undefined && rule.scheme !== part.scheme) {
    throw ruleError(`its url pattern says ${part.scheme} but its scheme key says ${rule.scheme}`, rule);
  }
  if (rule.port !== undefined && part.port !== undefined && rule.port !== part.port) {
    throw ruleError(`its url pattern says port ${part.port} but its port key says ${rule.port}`, rule);
  }
  if (rule.pathPrefix !== undefined && part.path !== undefined) {
    throw ruleError('give a path either in the url pattern or as pathPrefix, not both', rule);
  }
  const scheme = rule.scheme ?? part.scheme;
  const port = rule.port ?? part.port;
  const path = rule.pathPrefix !== undefined ? pathPrefixCondition(rule.pathPrefix) : part.path;
  const pathScore = path ? 1 + Math.min(path.literalLength, 100_000) : 0;
  const specificity =
    hostSpecificity(part.host) * 1e9 + pathScore * 4 + (scheme ? 2 : 0) + (port !== undefined ? 1 : 0);
  return {
    ref,
    target: rule.target,
    direction: rule.direction ?? 'any',
    host: part.host,
    // Every key present, even when undefined: one object shape keeps matching monomorphic.
    scheme,
    port,
    path,
    specificity,
  };
}

/** Describes a rule in words: `domainSuffix intranet.example, path /app -> guest`. */
export function describeUrlRule(rule: UrlRuleInput): string {
  const parts = [describeMatch(rule.match)];
  if (rule.pathPrefix !== undefined) parts.push(`path ${rule.pathPrefix}`);
  if (rule.scheme !== undefined) parts.push(`scheme ${rule.scheme}`);
  if (rule.port !== undefined) parts.push(`port ${rule.port}`);
  if (rule.direction !== undefined && rule.direction !== 'any') parts.push(`only ${rule.direction}`);
  return `${parts.join(', ')} -> ${rule.target}`;
}

/** True when the rule's conditions other than the host hold for `url` opened in `direction`. */
export function conditionsHold(rule: CompiledUrlRule, url: NormalizedUrl, direction: CrossingDirection): boolean {
  if (rule.direction !== 'any' && rule.direction !== direction) return false;
  if (rule.scheme !== undefined && rule.scheme !== url.scheme) return false;
  if (rule.port !== undefined && rule.port !== url.port) return false;
  return rule.path === undefined || rule.path.test(url.path, url.query);
}

/** True when the rule's host part matches `url`'s host. */
export function hostMatches(host: RuleHost, url: NormalizedUrl): boolean {
  switch (host.kind) {
    case 'exact':
      return url.host === host.host;
    case 'suffix':
      return url.kind === 'name' && (url.host === host.suffix || url.host.endsWith(host.dotted));
    case 'subdomains':
      return url.kind === 'name' && url.host.endsWith(host.dotted);
    case 'prefix': {
      const ip = url.ip;
      if (ip === undefined || ip.family !== host.prefix.family) return false;
      if (ip.family === 4 && host.prefix.family === 4) {
        return (
          host.prefix.length === 0 ||
          (ip.value & (0xffffffff << (32 - host.prefix.length))) >>> 0 === host.prefix.network
        );
      }
      if (ip.family === 6 && host.prefix.family === 6) {
        const shift = BigInt(128 - host.prefix.length);
        return (ip.value >> shift) << shift === host.prefix.network;
      }
      return false;
    }
    case 'local':
      return url.kind === 'name' && !url.host.includes('.');
    case 'any':
      return true;
  }
}

/** True when the rule matches `url` opened in `direction` (the reference predicate). */
export function urlRuleMatches(rule: CompiledUrlRule, url: NormalizedUrl, direction: CrossingDirection): boolean {
  return hostMatches(rule.host, url) && conditionsHold(rule, url, direction);
}
