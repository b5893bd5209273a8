import {
  resolveSetting,
  settingRef,
  sourceName,
  type ApplicableEntry,
  type MergeRules,
  type PolicyEntry,
  type Sourced,
} from './layers.js';
import { compileUrlMatcher, type UrlMatcher } from './url-matcher.js';
import { normalizeUrl } from './url-normalize.js';
import type { CompiledUrlRule } from './url-rules.js';
import type { CrossingDirection, PolicyDecisionBase, Side } from './types.js';

/** Where a URL opens, and why. */
export interface UrlDecision extends PolicyDecisionBase {
  readonly kind: 'url';
  /** Same as `target`. */
  readonly outcome: Side;
  /** Where the URL opens. */
  readonly target: Side;
  /** Where it was opened. */
  readonly openedOn: Side;
  /** True when it must move to the other side. */
  readonly redirect: boolean;
  readonly direction: CrossingDirection;
  /** The URL as given. */
  readonly url: string;
  /** The URL as compared (see normalizeUrl). */
  readonly normalized: string;
}

/** The web redirection in force for a subject. */
export interface WebRedirection {
  readonly enabled: Sourced<boolean>;
  readonly defaultTarget: Sourced<Side>;
  readonly hostToGuest: Sourced<boolean>;
  readonly guestToHost: Sourced<boolean>;
  /** The rules, strongest first. */
  readonly rules: readonly CompiledUrlRule[];
  readonly matcher: UrlMatcher;
}

const builtIn = <T>(value: T): Sourced<T> => ({
  value,
  layer: 'built-in',
  source: 'Tandem',
  path: '',
  appliesTo: 'everyone',
});

/**
 * Orders the rules of the applicable entries and compiles them. Precedence: the higher layer
 * first; inside a layer, with merge `most-specific` the most specific rule of any assignment,
 * with merge `first` the first assignment that has a matching rule; then the order written.
 */
export function buildWebRedirection(
  applicable: readonly ApplicableEntry[],
  merge: MergeRules['webRedirection'],
  rulesOf: (entry: PolicyEntry) => readonly CompiledUrlRule[],
): WebRedirection {
  const keyed: { rule: CompiledUrlRule; rank: number; group: number; pos: number; i: number }[] = [];
  applicable.forEach(({ entry, appliesTo }, pos) => {
    rulesOf(entry).forEach((rule, i) => {
      const withWho = rule.ref.appliesTo === appliesTo ? rule : { ...rule, ref: { ...rule.ref, appliesTo } };
      keyed.push({ rule: withWho, rank: entry.rank, group: merge === 'first' ? pos : 0, pos, i });
    });
  });
  keyed.sort(
    (a, b) =>
      a.rank - b.rank || a.group - b.group || b.rule.specificity - a.rule.specificity || a.pos - b.pos || a.i - b.i,
  );
  const rules = keyed.map((k) => k.rule);
  const configured = applicable.some((a) => a.entry.doc.webRedirection !== undefined);
  return {
    enabled:
      resolveSetting(applicable, (d) => d.webRedirection?.enabled, 'webRedirection.enabled', 'first') ??
      builtIn(configured),
    defaultTarget:
      resolveSetting(applicable, (d) => d.webRedirection?.defaultTarget, 'webRedirection.defaultTarget', 'first') ??
      builtIn<Side>('host'),
    hostToGuest:
      resolveSetting(applicable, (d) => d.webRedirection?.hostToGuest, 'webRedirection.hostToGuest', 'first') ??
      builtIn(true),
    guestToHost:
      resolveSetting(applicable, (d) => d.webRedirection?.guestToHost, 'webRedirection.guestToHost', 'first') ??
      builtIn(false),
    rules,
    matcher: compileUrlMatcher(rules, { precedence: 'as-given' }),
  };
}

const where = (s: Sourced<unknown>): string =>
  s.layer === 'built-in' ? "Tandem's default" : `${s.path} in ${s.layer} (${sourceName(s.source)})`;

/**
 * Decides where a URL opened on `from` opens. Throws InvalidInputError for a URL that cannot be
 * parsed (see normalizeUrl): such a URL is never redirected.
 */
export function decideUrl(web: WebRedirection, input: string | URL, from: Side): UrlDecision {
  const url = normalizeUrl(input);
  const direction: CrossingDirection = from === 'host' ? 'host-to-guest' : 'guest-to-host';
  const base = {
    kind: 'url' as const,
    openedOn: from,
    direction,
    url: typeof input === 'string' ? input : input.href,
    normalized: url.href,
  };
  const stay = (s: Sourced<boolean>, key: string, why: string): UrlDecision => {
    const rule = settingRef(s, `${key} ${String(s.value)}`);
    return {
      ...base,
      outcome: from,
      target: from,
      redirect: false,
      layer: s.layer,
      ...(rule ? { rule } : {}),
      reason: why,
    };
  };
  if (!web.enabled.value)
    return stay(web.enabled, 'enabled', `web redirection is off (${where(web.enabled)}): the URL stays on the ${from}`);
  const switchOn = from === 'host' ? web.hostToGuest : web.guestToHost;
  if (!switchOn.value) {
    return stay(
      switchOn,
      from === 'host' ? 'hostToGuest' : 'guestToHost',
      `redirection of URLs opened on the ${from} is off (${from === 'host' ? 'hostToGuest' : 'guestToHost'} false, ${where(switchOn)}): the URL stays on the ${from}`,
    );
  }
  const rule = web.matcher.match(url, direction);
  if (rule) {
    const r = rule.ref;
    const move = rule.target === from ? `stays on the ${from}` : `opens in the ${rule.target}`;
    return {
      ...base,
      outcome: rule.target,
      target: rule.target,
      redirect: rule.target !== from,
      layer: r.layer,
      rule: r,
      reason: `${url.href} ${move}: rule ${r.label} (${r.text}) for ${r.appliesTo} in ${r.layer} (${sourceName(r.source)}) is the strongest match`,
    };
  }
  const t = web.defaultTarget;
  const ref = settingRef(t, `defaultTarget ${t.value}`);
  return {
    ...base,
    outcome: t.value,
    target: t.value,
    redirect: t.value !== from,
    layer: t.layer,
    ...(ref ? { rule: ref } : {}),
    reason: `no rule matches ${url.href}: the default target ${t.value} applies (${where(t)})`,
  };
}
