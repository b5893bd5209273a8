import { maskIpv4 } from './ip.js';
import { hashStep, LabelTrie } from './label-trie.js';
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

/**
 * Compiles rules into a matcher whose cost does not grow with the number of rules: exact hosts
 * and domain suffixes in a trie of reversed labels held in flat typed arrays (looked up by label
 * hashes computed in one pass over the URL's host), IP prefixes in one hash table per
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
  const trie = new LabelTrie();
  // Per trie node: rules for exactly that host, for it and below, for strictly below.
  const exactOf: (Entry[] | undefined)[] = [];
  const suffixOf: (Entry[] | undefined)[] = [];
  const subOf: (Entry[] | undefined)[] = [];
  // The domain of each node that holds rules, to confirm a hit against the whole host once.
  const nameOf: (string | undefined)[] = [];
  const nodeFor = (name: string): number => {
    let node = LabelTrie.ROOT;
    for (const label of name.split('.').reverse()) node = trie.childFor(node, label);
    nameOf[node] = name;
    return node;
  };
  const add = (lists: (Entry[] | undefined)[], node: number, entry: Entry): void => {
    const list = lists[node];
    if (list) list.push(entry);
    else lists[node] = [entry];
  };
  const exactAddresses = new Map<string, Entry[]>();
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
        add(exactOf, nodeFor(h.host), entry);
        break;
      }
      case 'suffix':
      case 'subdomains': {
        add(h.kind === 'suffix' ? suffixOf : subOf, nodeFor(h.suffix), entry);
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
        let node = LabelTrie.ROOT;
        let label = 0;
        let end = host.length;
        for (let i = end - 1; i >= -1; i--) {
          const c = i >= 0 ? host.charCodeAt(i) : 46;
          if (c !== 46) {
            label = hashStep(label, c);
            continue;
          }
          node = trie.child(node, label, host, i + 1, end);
          if (node === 0) break;
          const name = nameOf[node];
          // Label hashes can collide: a node with rules counts only when its domain is really
          // the end of this host (the walk puts the label boundary in the right place).
          if (name !== undefined && name.length === host.length - i - 1 && host.endsWith(name)) {
            if ((e = firstHolding(suffixOf[node], url, dir, limit)) !== undefined) {
              best = e;
              limit = e.order;
            }
            if ((e = firstHolding(i >= 0 ? subOf[node] : exactOf[node], url, dir, limit)) !== undefined) {
              best = e;
              limit = e.order;
            }
          }
          label = 0;
          end = i;
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
