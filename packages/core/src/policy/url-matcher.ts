import { maskIpv4, parseIpv4 } from './ip.js';
import { hostLabels } from './host-labels.js';
import { LabelTrie } from './label-trie.js';
import type { NormalizedUrl, RedirectableScheme } from './url-normalize.js';
import type { PathCondition } from './url-pattern.js';
import { urlRuleMatches, type CompiledUrlRule } from './url-rules.js';
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

function push<K>(map: Map<K, number[]>, key: K, order: number): void {
  const list = map.get(key);
  if (list) list.push(order);
  else map.set(key, [order]);
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

// The matcher's hot data lives in typed arrays, so that deciding a URL reads a few cache lines
// instead of following pointers from node to list to entry to rule to path condition: with
// thousands of rules those objects are scattered over the heap, and every hop is a cache miss.

// Per trie node, NODE ints: [0] the length of the node's domain when rules hang on it (else 0),
// [1] where the domain starts in `names`, [2, 3] its domainSuffix rules, [4, 5] its subdomainsOf
// rules, [6, 7] its exact host rules, each a range [start, end) of `lists`.
const NODE = 8;
// Per rule (by order), COND ints: [0] flags (DIR_* | SCHEME_* << 2 | PATH_* << 4 | PORT; 0 when
// only the host counts), [1] the port, [2] where a literal path prefix starts in `pathChars`,
// [3] its length.
const COND = 4;
// Per rule in a list (`lists`), LIST ints: [0] its order, [1] its flags, [2] its port; the rest of
// its conditions stay in `conds`, read only for a rule with a path condition.
const LIST = 4;
const DIR_HOST_TO_GUEST = 1;
const DIR_GUEST_TO_HOST = 2;
const SCHEME_CODE: Record<RedirectableScheme, number> = { http: 1, https: 2, ftp: 3 };
const PATH_NONE = 0;
const PATH_SEGMENT_PREFIX = 1; // the prefix, then the end of the path or a slash
const PATH_PREFIX = 2;
const PATH_TEST = 3; // anything else: the condition's own test
const PORT = 64;
// Per IPv4 table slot, V4 ints: [0] the network, [1] the prefix length + 1 (0: empty), [2, 3] its
// rules as a range of `lists`.
const V4 = 4;

// The common schemes without a lookup.
const schemeCode = (scheme: RedirectableScheme): number =>
  scheme === 'http' ? 1 : scheme === 'https' ? 2 : SCHEME_CODE[scheme];

function v4Slot(network: number, length: number, mask: number): number {
  let h = network ^ Math.imul(length + 1, 0x27d4eb2d);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  return (h ^ (h >>> 13)) & mask;
}

function pathFlags(path: PathCondition | undefined): number {
  if (path === undefined) return PATH_NONE;
  if (path.prefix === undefined) return PATH_TEST;
  return path.prefix.segment ? PATH_SEGMENT_PREFIX : PATH_PREFIX;
}

/**
 * Compiles rules into a matcher whose cost does not grow with the number of rules: exact hosts
 * and domain suffixes in a trie of reversed labels held in flat typed arrays (looked up by label
 * hashes computed in one pass over the URL's host), IPv4 prefixes in one hash table keyed by
 * network and length, IPv6 prefixes in one table per prefix length, so a lookup touches only the
 * rules that share the URL's host or a suffix of it.
 *
 * @example
 * ```ts
 * const rules = [compileUrlRule({ match: { domainSuffix: 'contoso.com' }, target: 'guest' }, ref)];
 * const matcher = compileUrlMatcher(rules);
 * matcher.match(normalizeUrl('http://a.contoso.com/'), 'host-to-guest')?.target; // 'guest'
 * ```
 */
export function compileUrlMatcher(rules: readonly CompiledUrlRule[], options: UrlMatcherOptions = {}): UrlMatcher {
  const entries = ordered(rules, options);
  const ruleOf = entries.map((e) => e.rule);
  const size = entries.length;

  // Each rule's conditions other than the host.
  const conds = new Int32Array(size * COND);
  let pathText = '';
  for (let o = 0; o < size; o++) {
    const r = ruleOf[o] as CompiledUrlRule;
    const dir =
      r.direction === 'host-to-guest' ? DIR_HOST_TO_GUEST : r.direction === 'guest-to-host' ? DIR_GUEST_TO_HOST : 0;
    const scheme = r.scheme === undefined ? 0 : SCHEME_CODE[r.scheme];
    conds[o * COND] = dir | (scheme << 2) | (pathFlags(r.path) << 4) | (r.port === undefined ? 0 : PORT);
    conds[o * COND + 1] = r.port ?? 0;
    const prefix = r.path?.prefix?.text;
    if (prefix !== undefined) {
      conds[o * COND + 2] = pathText.length;
      conds[o * COND + 3] = prefix.length;
      pathText += prefix;
    }
  }
  const pathChars = Uint16Array.from(pathText, (c) => c.charCodeAt(0));

  // Rule lists, gathered per key first (in order, so every list is sorted), then laid end to end.
  const trie = new LabelTrie();
  const nodeLists = new Map<number, { name: string; suffix: number[]; sub: number[]; exact: number[] }>();
  const listsOf = (name: string): { name: string; suffix: number[]; sub: number[]; exact: number[] } => {
    let node = LabelTrie.ROOT;
    for (const label of name.split('.').reverse()) node = trie.childFor(node, label);
    let l = nodeLists.get(node);
    if (!l) nodeLists.set(node, (l = { name, suffix: [], sub: [], exact: [] }));
    return l;
  };
  const v4 = new Map<number, Map<number, number[]>>();
  const v6 = new Map<number, Map<string, number[]>>();
  const v6Exact = new Map<string, number[]>();
  const local: number[] = [];
  const any: number[] = [];
  const addV4 = (length: number, network: number, order: number): void => {
    let table = v4.get(length);
    if (!table) v4.set(length, (table = new Map<number, number[]>()));
    push(table, network, order);
  };
  for (let o = 0; o < size; o++) {
    const h = (ruleOf[o] as CompiledUrlRule).host;
    switch (h.kind) {
      case 'exact': {
        // Names cannot be all digits and dots, and IPv6 is bracketed: the rest are addresses.
        if (h.host.startsWith('[')) push(v6Exact, h.host, o);
        else if (/^[\d.]+$/.test(h.host)) {
          // The address alone: a /32. Anything else all digits and dots is no address a URL has.
          const address = parseIpv4(h.host);
          if (address !== undefined) addV4(32, address, o);
        } else listsOf(h.host).exact.push(o);
        break;
      }
      case 'suffix':
        listsOf(h.suffix).suffix.push(o);
        break;
      case 'subdomains':
        listsOf(h.suffix).sub.push(o);
        break;
      case 'prefix': {
        const p = h.prefix;
        if (p.family === 4) addV4(p.length, p.network, o);
        else {
          let table = v6.get(p.length);
          if (!table) v6.set(p.length, (table = new Map<string, number[]>()));
          push(table, ipv6Key(hex128(p.network), p.length), o);
        }
        break;
      }
      case 'local':
        local.push(o);
        break;
      case 'any':
        any.push(o);
        break;
    }
  }

  const flat: number[] = [];
  const place = (list: readonly number[]): number => {
    const start = flat.length / LIST;
    for (const o of list) flat.push(o, conds[o * COND] ?? 0, conds[o * COND + 1] ?? 0, 0);
    return start;
  };
  const placed = (): number => flat.length / LIST;

  const nodes = new Int32Array((trie.size + 1) * NODE);
  let nameText = '';
  for (const [node, l] of nodeLists) {
    const at = node * NODE;
    nodes[at] = l.name.length;
    nodes[at + 1] = nameText.length;
    nameText += l.name;
    nodes[at + 2] = place(l.suffix);
    nodes[at + 3] = placed();
    nodes[at + 4] = place(l.sub);
    nodes[at + 5] = placed();
    nodes[at + 6] = place(l.exact);
    nodes[at + 7] = placed();
  }
  const names = Uint16Array.from(nameText, (c) => c.charCodeAt(0));

  let v4Count = 0;
  for (const table of v4.values()) v4Count += table.size;
  let v4Mask = 1;
  while (v4Mask + 1 < v4Count * 2) v4Mask = v4Mask * 2 + 1;
  const v4Slots = new Int32Array((v4Mask + 1) * V4);
  for (const [length, table] of v4) {
    for (const [network, list] of table) {
      let s = v4Slot(network | 0, length, v4Mask);
      while (v4Slots[s * V4 + 1] !== 0) s = (s + 1) & v4Mask;
      v4Slots[s * V4] = network;
      v4Slots[s * V4 + 1] = length + 1;
      v4Slots[s * V4 + 2] = place(list);
      v4Slots[s * V4 + 3] = placed();
    }
  }
  const v4Lengths = Int32Array.from([...v4.keys()].sort((a, b) => b - a));

  const range = (list: readonly number[]): [number, number] => [place(list), placed()];
  const v6Lengths = [...v6.keys()].sort((a, b) => b - a);
  const v6Tables = v6Lengths.map(
    (len) => new Map([...(v6.get(len) ?? new Map<string, number[]>())].map(([k, list]) => [k, range(list)])),
  );
  const v6ExactRanges = new Map([...v6Exact].map(([k, list]) => [k, range(list)]));
  const [localStart, localEnd] = range(local);
  const [anyStart, anyEnd] = range(any);
  const lists = Int32Array.from(flat);

  /** True when rule `o`'s conditions other than the host hold (see conditionsHold). */
  const holds = (o: number, flags: number, port: number, url: NormalizedUrl, dir: number): boolean => {
    const d = flags & 3;
    if (d !== 0 && d !== dir) return false;
    const scheme = (flags >> 2) & 3;
    if (scheme !== 0 && scheme !== schemeCode(url.scheme)) return false;
    if ((flags & PORT) !== 0 && port !== url.port) return false;
    const kind = (flags >> 4) & 3;
    if (kind === PATH_NONE) return true;
    const path = url.path;
    if (kind === PATH_TEST) return (ruleOf[o] as CompiledUrlRule).path?.test(path, url.query) ?? true;
    const from = conds[o * COND + 2] ?? 0;
    const length = conds[o * COND + 3] ?? 0;
    if (path.length < length) return false;
    for (let k = 0; k < length; k++) if (path.charCodeAt(k) !== pathChars[from + k]) return false;
    return kind === PATH_PREFIX || path.length === length || path.charCodeAt(length) === 47;
  };
  /** The first rule of `lists[from, to)` ahead of `limit` whose conditions hold, or -1. */
  const first = (from: number, to: number, limit: number, url: NormalizedUrl, dir: number): number => {
    for (let at = from * LIST; at < to * LIST; at += LIST) {
      const o = lists[at] ?? limit;
      if (o >= limit) return -1;
      const flags = lists[at + 1] ?? 0;
      if (flags === 0 || holds(o, flags, lists[at + 2] ?? 0, url, dir)) return o;
    }
    return -1;
  };
  /** True when `host[from, host.length)` is the domain stored at `names[at, at + length)`. */
  const isName = (host: string, from: number, at: number, length: number): boolean => {
    for (let k = 0; k < length; k++) if (host.charCodeAt(from + k) !== names[at + k]) return false;
    return true;
  };

  return {
    size,
    match(url, direction) {
      const dir = direction === 'host-to-guest' ? DIR_HOST_TO_GUEST : DIR_GUEST_TO_HOST;
      let best = -1;
      let limit = size;
      let o: number;
      if (url.kind === 'name') {
        const host = url.host;
        let node = LabelTrie.ROOT;
        // From the last label to the first; the labels were most likely read already, while the
        // URL was normalized.
        for (let j = hostLabels.of(host) - 1; j >= 0; j--) {
          const from = j === 0 ? 0 : (hostLabels.ends[j - 1] ?? 0) + 1;
          node = trie.child(node, hostLabels.hashes[j] ?? 0, host, from, hostLabels.ends[j] ?? 0);
          if (node === 0) break;
          const at = node * NODE;
          const length = nodes[at] ?? 0;
          // Label hashes can collide: a node with rules counts only when its domain is really
          // the end of this host.
          if (length !== 0 && length === host.length - from && isName(host, from, nodes[at + 1] ?? 0, length)) {
            if ((o = first(nodes[at + 2] ?? 0, nodes[at + 3] ?? 0, limit, url, dir)) >= 0) best = limit = o;
            const more = j > 0 ? at + 4 : at + 6; // strictly below the domain, or the host itself
            if ((o = first(nodes[more] ?? 0, nodes[more + 1] ?? 0, limit, url, dir)) >= 0) best = limit = o;
            // A path condition's test is code: should it have normalized another URL, read the
            // labels of this host again.
            hostLabels.of(host);
          }
        }
        if (localEnd > localStart && !host.includes('.')) {
          if ((o = first(localStart, localEnd, limit, url, dir)) >= 0) best = limit = o;
        }
      } else if (url.ip !== undefined) {
        const ip = url.ip;
        if (ip.family === 4) {
          const value = ip.value;
          for (let i = 0; i < v4Lengths.length; i++) {
            const length = v4Lengths[i] ?? 0;
            const network = maskIpv4(value, length) | 0;
            for (let s = v4Slot(network, length, v4Mask); v4Slots[s * V4 + 1] !== 0; s = (s + 1) & v4Mask) {
              const at = s * V4;
              if (v4Slots[at] !== network || v4Slots[at + 1] !== length + 1) continue;
              if ((o = first(v4Slots[at + 2] ?? 0, v4Slots[at + 3] ?? 0, limit, url, dir)) >= 0) best = limit = o;
              break;
            }
          }
        } else {
          const exact = v6ExactRanges.get(url.host);
          if (exact !== undefined && (o = first(exact[0], exact[1], limit, url, dir)) >= 0) best = limit = o;
          if (v6Lengths.length > 0) {
            const hex = hex128(ip.value);
            for (let i = 0; i < v6Lengths.length; i++) {
              const r = v6Tables[i]?.get(ipv6Key(hex, v6Lengths[i] ?? 0));
              if (r !== undefined && (o = first(r[0], r[1], limit, url, dir)) >= 0) best = limit = o;
            }
          }
        }
      }
      if (anyEnd > anyStart && (o = first(anyStart, anyEnd, limit, url, dir)) >= 0) best = o;
      return best >= 0 ? ruleOf[best] : undefined;
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
