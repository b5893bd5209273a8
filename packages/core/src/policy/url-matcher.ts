import { maskIpv4 } from './ip.js';
import type { NormalizedUrl } from './url-normalize.js';
import { conditionsHold, urlRuleMatches, type CompiledUrlRule } from './url-rules.js';
import type { CrossingDirection } from './types.js';

/** Finds the rule that decides a URL. */
export interface UrlMatcher {
  /** How many rules it holds. */
  readonly size: number;
  /** The deciding rule for `url` opened in `direction`, or undefined when none matches. */
  match(url: NormalizedUrl, direction: CrossingDirection): CompiledUrlRule | undefined;
}

/** How a matcher orders rules. */
export interface UrlMatcherOptions {
  /**
   * `most-specific` (the default): the most specific matching rule wins, and among equally
   * specific rules the one given first. `as-given`: the first matching rule in the order given
   * (the policy engine sorts rules by layer and specificity itself and passes them as given).
   */
  readonly precedence?: 'most-specific' | 'as-given';
}

interface Entry {
  readonly rule: CompiledUrlRule;
  /** Lower wins. */
  readonly order: number;
}

/** A node of the reversed-label trie: `com`, then `contoso` below it, then `www` below that. */
interface TrieNode {
  readonly label: string;
  /** Children by the hash of their label; labels with the same hash are chained. */
  readonly children: Map<number, TrieNode>;
  sameHash: TrieNode | undefined;
  /** Rules for this domain and everything below it. */
  readonly suffix: Entry[];
  /** Rules for everything strictly below this domain. */
  readonly sub: Entry[];
}

/** Rules for one exact host name. */
interface ExactBucket {
  readonly host: string;
  readonly entries: Entry[];
  sameHash: ExactBucket | undefined;
}

// Labels and hosts are looked up by a hash computed in one right-to-left pass over the URL's
// host, so a lookup hashes a small integer instead of a fresh substring; a hit is confirmed by
// comparing the characters in place.
const step = (h: number, c: number): number => (Math.imul(h, 31) + c) | 0;
const smi = (h: number): number => h & 0x3fffffff;

function hashRight(s: string): number {
  let h = 0;
  for (let i = s.length - 1; i >= 0; i--) h = step(h, s.charCodeAt(i));
  return smi(h);
}

function sameLabel(label: string, host: string, from: number, to: number): boolean {
  if (label.length !== to - from) return false;
  for (let i = 0; i < label.length; i++) if (label.charCodeAt(i) !== host.charCodeAt(from + i)) return false;
  return true;
}

function childOf(node: TrieNode, hash: number, host: string, from: number, to: number): TrieNode | undefined {
  let c = node.children.get(hash);
  while (c !== undefined && !sameLabel(c.label, host, from, to)) c = c.sameHash;
  return c;
}

function ordered(rules: readonly CompiledUrlRule[], options: UrlMatcherOptions): Entry[] {
  const entries = rules.map((rule, i) => ({ rule, i }));
  if ((options.precedence ?? 'most-specific') === 'most-specific') {
    entries.sort((a, b) => b.rule.specificity - a.rule.specificity || a.i - b.i);
  }
  return entries.map((e, order) => ({ rule: e.rule, order }));
}

function firstHolding(
  list: readonly Entry[] | undefined,
  url: NormalizedUrl,
  dir: CrossingDirection,
  limit: number,
): Entry | undefined {
  if (list === undefined) return undefined;
  for (let i = 0; i < list.length; i++) {
    const e = list[i] as Entry;
    if (e.order >= limit) return undefined;
    if (conditionsHold(e.rule, url, dir)) return e;
  }
  return undefined;
}

function push<K>(map: Map<K, Entry[]>, key: K, entry: Entry): void {
  const list = map.get(key);
  if (list) list.push(entry);
  else map.set(key, [entry]);
}

/** An IPv6 address as 32 hex digits. */
function hex128(value: bigint): string {
  return value.toString(16).padStart(32, '0');
}

/** The table key of an IPv6 address under a prefix length: its first `length` bits, in hex. */
function ipv6Key(hex: string, length: number): string {
  const whole = length >> 2;
  const rest = length & 3;
  if (rest === 0) return hex.slice(0, whole);
  const nibble = parseInt(hex[whole] ?? '0', 16) & (0xf0 >> rest) & 0xf;
  return hex.slice(0, whole) + nibble.toString(16);
}

const newNode = (label: string): TrieNode => ({ label, children: new Map(), sameHash: undefined, suffix: [], sub: [] });

function childFor(node: TrieNode, label: string): TrieNode {
  const hash = hashRight(label);
  const first = node.children.get(hash);
  for (let c = first; c !== undefined; c = c.sameHash) if (c.label === label) return c;
  const created = newNode(label);
  created.sameHash = first;
  node.children.set(hash, created);
  return created;
}

/**
 * Compiles rules into a matcher whose cost does not grow with the number of rules: exact hosts
 * in a hash map, domain suffixes in a trie of reversed labels (both looked up by hashes computed
 * in one pass over the URL's host), IP prefixes in one hash table per
 * prefix length, so a lookup touches only the rules that share the URL's host or a suffix of it.
 *
 * @example
 * ```ts
 * const rules = [compileUrlRule({ match: { domainSuffix: 'contoso.com' }, target: 'guest' }, ref)];
 * const matcher = compileUrlMatcher(rules);
 * matcher.match(normalizeUrl('http://a.contoso.com/'), 'host-to-guest')?.target; // 'guest'
 * ```
 */
export function compileUrlMatcher(rules: readonly CompiledUrlRule[], options: UrlMatcherOptions = {}): UrlMatcher {
  const exactNames = new Map<number, ExactBucket>();
  const exactAddresses = new Map<string, Entry[]>();
  const root = newNode('');
  const v4 = new Map<number, Map<number, Entry[]>>();
  const v6 = new Map<number, Map<string, Entry[]>>();
  const local: Entry[] = [];
  const any: Entry[] = [];
  const entries = ordered(rules, options);
  for (const entry of entries) {
    const h = entry.rule.host;
    switch (h.kind) {
      case 'exact': {
        // Names cannot be all digits and dots, and IPv6 is bracketed: the rest are addresses.
        if (h.host.startsWith('[') || /^[\d.]+$/.test(h.host)) {
          push(exactAddresses, h.host, entry);
          break;
        }
        const hash = hashRight(h.host);
        const first = exactNames.get(hash);
        let bucket = first;
        while (bucket !== undefined && bucket.host !== h.host) bucket = bucket.sameHash;
        if (bucket === undefined) exactNames.set(hash, (bucket = { host: h.host, entries: [], sameHash: first }));
        bucket.entries.push(entry);
        break;
      }
      case 'suffix':
      case 'subdomains': {
        let node = root;
        for (const label of h.suffix.split('.').reverse()) node = childFor(node, label);
        (h.kind === 'suffix' ? node.suffix : node.sub).push(entry);
        break;
      }
      case 'prefix': {
        const p = h.prefix;
        if (p.family === 4) {
          let table = v4.get(p.length);
          if (!table) v4.set(p.length, (table = new Map<number, Entry[]>()));
          push(table, p.network, entry);
        } else {
          let table = v6.get(p.length);
          if (!table) v6.set(p.length, (table = new Map<string, Entry[]>()));
          push(table, ipv6Key(hex128(p.network), p.length), entry);
        }
        break;
      }
      case 'local':
        local.push(entry);
        break;
      case 'any':
        any.push(entry);
        break;
    }
  }
  // Entries were pushed in order, so every list is already sorted by order.
  const v4Lengths = [...v4.keys()].sort((a, b) => b - a);
  const v4Tables = v4Lengths.map((l) => v4.get(l) ?? new Map<number, Entry[]>());
  const v6Lengths = [...v6.keys()].sort((a, b) => b - a);
  const v6Tables = v6Lengths.map((l) => v6.get(l) ?? new Map<string, Entry[]>());

  return {
    size: entries.length,
    match(url, dir) {
      let best: Entry | undefined;
      let limit = Number.POSITIVE_INFINITY;
      let e: Entry | undefined;
      if (url.kind === 'name') {
        const host = url.host;
        let node: TrieNode | undefined = root;
        let label = 0;
        let full = 0;
        let end = host.length;
        for (let i = end - 1; i >= -1; i--) {
          const c = i >= 0 ? host.charCodeAt(i) : 46;
          if (c !== 46) {
            label = step(label, c);
            full = step(full, c);
            continue;
          }
          if (i >= 0) full = step(full, c);
          if (node !== undefined) {
            node = childOf(node, smi(label), host, i + 1, end);
            if (node !== undefined) {
              if (node.suffix.length > 0 && (e = firstHolding(node.suffix, url, dir, limit)) !== undefined) {
                best = e;
                limit = e.order;
              }
              if (i >= 0 && node.sub.length > 0 && (e = firstHolding(node.sub, url, dir, limit)) !== undefined) {
                best = e;
                limit = e.order;
              }
            }
          }
          label = 0;
          end = i;
        }
        let bucket = exactNames.get(smi(full));
        while (bucket !== undefined && bucket.host !== host) bucket = bucket.sameHash;
        if (bucket !== undefined && (e = firstHolding(bucket.entries, url, dir, limit)) !== undefined) {
          best = e;
          limit = e.order;
        }
        if (local.length > 0 && !host.includes('.') && (e = firstHolding(local, url, dir, limit)) !== undefined) {
          best = e;
          limit = e.order;
        }
      } else if (url.ip !== undefined) {
        if ((e = firstHolding(exactAddresses.get(url.host), url, dir, limit)) !== undefined) {
          best = e;
          limit = e.order;
        }
        const ip = url.ip;
        if (ip.family === 4) {
          for (let i = 0; i < v4Lengths.length; i++) {
            const list = v4Tables[i]?.get(maskIpv4(ip.value, v4Lengths[i] ?? 0));
            if (list !== undefined && (e = firstHolding(list, url, dir, limit)) !== undefined) {
              best = e;
              limit = e.order;
            }
          }
        } else if (v6Lengths.length > 0) {
          const hex = hex128(ip.value);
          for (let i = 0; i < v6Lengths.length; i++) {
            const list = v6Tables[i]?.get(ipv6Key(hex, v6Lengths[i] ?? 0));
            if (list !== undefined && (e = firstHolding(list, url, dir, limit)) !== undefined) {
              best = e;
              limit = e.order;
            }
          }
        }
      }
      if (any.length > 0 && (e = firstHolding(any, url, dir, limit)) !== undefined) best = e;
      return best?.rule;
    },
  };
}

/**
 * The reference matcher: tests every rule in turn. Same answers as {@link compileUrlMatcher}
 * (the property tests hold them to it), at a cost that grows with the number of rules; the
 * benchmark compares the two.
 */
export function linearUrlMatcher(rules: readonly CompiledUrlRule[], options: UrlMatcherOptions = {}): UrlMatcher {
  const entries = ordered(rules, options);
  return {
    size: entries.length,
    match(url, dir) {
      for (const e of entries) if (urlRuleMatches(e.rule, url, dir)) return e.rule;
      return undefined;
    },
  };
}
