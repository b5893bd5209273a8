import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileUrlMatcher, linearUrlMatcher } from './url-matcher.js';
import { normalizeUrl } from './url-normalize.js';
import { compileUrlRule, describeUrlRule, type CompiledUrlRule, type UrlRuleInput } from './url-rules.js';
import type { CrossingDirection } from './types.js';

function compile(rules: readonly UrlRuleInput[]): CompiledUrlRule[] {
  return rules.map((rule, i) =>
    compileUrlRule(rule, {
      layer: 'package-default',
      source: 'test',
      path: `rules[${i}]`,
      ...(rule.id !== undefined ? { id: rule.id } : {}),
      label: rule.id ?? `rules[${i}]`,
      text: describeUrlRule(rule),
      appliesTo: 'everyone',
    }),
  );
}

// Every rule kind, each with an id the table below expects.
const RULES: UrlRuleInput[] = [
  { id: 'suffix', match: { domainSuffix: 'contoso.com' }, target: 'guest' },
  { id: 'exact', match: { host: 'www.contoso.com' }, target: 'host' },
  { id: 'sub', match: { subdomainsOf: 'fabrikam.com' }, target: 'guest' },
  { id: 'v4', match: { ipPrefix: '10.20.0.0/16' }, target: 'guest' },
  { id: 'v4-narrow', match: { ipPrefix: '10.20.30.0/24' }, target: 'host' },
  { id: 'v4-host', match: { host: '192.168.7.7' }, target: 'guest' },
  { id: 'v6', match: { ipPrefix: 'fd00::/8' }, target: 'guest' },
  { id: 'path', match: { domainSuffix: 'adatum.com' }, pathPrefix: '/legacy', target: 'guest' },
  { id: 'wild', match: { url: 'http://*.legacy.example/app/*' }, target: 'guest' },
  { id: 'local', match: { localNames: true }, target: 'guest' },
  { id: 'scheme', match: { host: 'secure.contoso.com' }, scheme: 'https', target: 'host' },
  { id: 'port', match: { domainSuffix: 'tailspin.example' }, port: 8080, target: 'guest' },
  { id: 'g2h', match: { domainSuffix: 'news.example' }, direction: 'guest-to-host', target: 'host' },
  { id: 'idn', match: { domainSuffix: 'bücher.example' }, target: 'guest' },
  { id: 'anyhost', match: { url: '*://*/cgi-bin/*' }, target: 'guest' },
  { id: 'pattern-port', match: { url: 'https://portal.example:8443' }, target: 'guest' },
  { id: 'trailing-dot-rule', match: { domainSuffix: 'Woodgrove.Example.' }, target: 'guest' },
];

const v4 = (a: number, b: number, c: number, d: number): number => ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;

const TABLE: [string, CrossingDirection, string | undefined][] = [
  ['http://www.contoso.com/', 'host-to-guest', 'exact'],
  ['HTTP://WWW.CONTOSO.COM./x', 'host-to-guest', 'exact'],
  ['http://a.contoso.com/', 'host-to-guest', 'suffix'],
  ['http://contoso.com/', 'host-to-guest', 'suffix'],
  ['http://a.b.c.contoso.com/deep', 'host-to-guest', 'suffix'],
  ['http://spearphishingcontoso.com/', 'host-to-guest', undefined],
  ['http://contoso.com.evil.example/', 'host-to-guest', undefined],
  ['http://contoso.com@evil.example/', 'host-to-guest', undefined],
  ['http://evil.example/?u=http://contoso.com/', 'host-to-guest', undefined],
  ['http://fabrikam.com/', 'host-to-guest', undefined],
  ['http://x.fabrikam.com/', 'host-to-guest', 'sub'],
  ['http://10.20.1.1/', 'host-to-guest', 'v4'],
  ['http://10.20.30.5/', 'host-to-guest', 'v4-narrow'],
  ['http://0x0a.0x14.0x1e.5/', 'host-to-guest', 'v4-narrow'],
  [`http://${v4(10, 20, 1, 1)}/`, 'host-to-guest', 'v4'],
  ['http://012.024.1.1/', 'host-to-guest', 'v4'],
  ['http://[::ffff:10.20.1.1]/', 'host-to-guest', 'v4'],
  ['http://10.21.0.1/', 'host-to-guest', undefined],
  ['http://192.168.7.7/', 'host-to-guest', 'v4-host'],
  ['http://192.168.7.8/', 'host-to-guest', undefined],
  ['http://[fd12::1]/', 'host-to-guest', 'v6'],
  ['http://[FD12:0::1]:8080/', 'host-to-guest', 'v6'],
  ['http://[fe80::1]/', 'host-to-guest', undefined],
  ['http://adatum.com/legacy', 'host-to-guest', 'path'],
  ['http://www.adatum.com/legacy/x?y', 'host-to-guest', 'path'],
  ['http://adatum.com/%6cegacy/', 'host-to-guest', 'path'],
  ['http://adatum.com/x/../legacy/', 'host-to-guest', 'path'],
  ['http://adatum.com/legacyx', 'host-to-guest', undefined],
  ['http://adatum.com/Legacy', 'host-to-guest', undefined],
  ['http://adatum.com/', 'host-to-guest', undefined],
  ['http://a.legacy.example/app/x', 'host-to-guest', 'wild'],
  ['http://a.b.legacy.example/app/', 'host-to-guest', 'wild'],
  ['https://a.legacy.example/app/x', 'host-to-guest', undefined],
  ['http://legacy.example/app/x', 'host-to-guest', undefined],
  ['http://a.legacy.example/apps', 'host-to-guest', undefined],
  ['http://intranet/', 'host-to-guest', 'local'],
  ['http://INTRANET./', 'host-to-guest', 'local'],
  ['http://10/', 'host-to-guest', undefined],
  ['https://secure.contoso.com/', 'host-to-guest', 'scheme'],
  ['http://secure.contoso.com/', 'host-to-guest', 'suffix'],
  ['http://tailspin.example:8080/', 'host-to-guest', 'port'],
  ['http://tailspin.example/', 'host-to-guest', undefined],
  ['https://portal.example:8443/any/path', 'host-to-guest', 'pattern-port'],
  ['https://portal.example/', 'host-to-guest', undefined],
  ['http://a.news.example/', 'guest-to-host', 'g2h'],
  ['http://a.news.example/', 'host-to-guest', undefined],
  ['http://x.bücher.example/', 'host-to-guest', 'idn'],
  ['http://x.xn--bcher-kva.example/', 'host-to-guest', 'idn'],
  ['http://woodgrove.example/', 'host-to-guest', 'trailing-dot-rule'],
  ['http://anything.example/cgi-bin/run', 'host-to-guest', 'anyhost'],
  ['http://10.99.0.1/cgi-bin/run', 'host-to-guest', 'anyhost'],
  ['http://www.contoso.com/cgi-bin/x', 'host-to-guest', 'exact'],
  ['http://elsewhere.example/', 'host-to-guest', undefined],
];

describe('URL matching: every rule kind, tricky URLs', () => {
  const rules = compile(RULES);
  const compiled = compileUrlMatcher(rules);
  const linear = linearUrlMatcher(rules);
  it.each(TABLE)('%s (%s) -> %s', (url, dir, expected) => {
    const n = normalizeUrl(url);
    expect(compiled.match(n, dir)?.ref.id).toBe(expected);
    expect(linear.match(n, dir)?.ref.id).toBe(expected);
  });
});

describe('hash collisions in the lookup tables', () => {
  // "ac0" and "aan" hash alike (read left to right, times 31): the matcher must still tell them apart.
  it('tells colliding labels and hosts apart', () => {
    const rules = compile([
      { id: 'ac0', match: { domainSuffix: 'ac0.example' }, target: 'guest' },
      { id: 'aan', match: { domainSuffix: 'aan.example' }, target: 'host' },
      { id: 'exact-ac0', match: { host: 'w.ac0' }, target: 'guest' },
      { id: 'exact-aan', match: { host: 'w.aan' }, target: 'host' },
    ]);
    const m = compileUrlMatcher(rules);
    const id = (u: string): string | undefined => m.match(normalizeUrl(u), 'host-to-guest')?.ref.id;
    expect(id('http://a.ac0.example/')).toBe('ac0');
    expect(id('http://a.aan.example/')).toBe('aan');
    expect(id('http://a.ab0.example/')).toBeUndefined();
    expect(id('http://w.ac0/')).toBe('exact-ac0');
    expect(id('http://w.aan/')).toBe('exact-aan');
    expect(id('http://w.ab0/')).toBeUndefined();
    expect(id('http://A.AAN.Example./')).toBe('aan');
    expect(id('http://W.AC0/')).toBe('exact-ac0');
  });

  it('a URL label that only hashes like a rule label does not take the rule', () => {
    const m = compileUrlMatcher(
      compile([
        { id: 'ac0', match: { domainSuffix: 'ac0.example' }, target: 'guest' },
        { id: 'deep', match: { subdomainsOf: 'b.ac0.example' }, target: 'guest' },
        { id: 'exact', match: { host: 'ac0' }, target: 'guest' },
      ]),
    );
    for (const url of ['http://aan.example/', 'http://a.aan.example/', 'http://c.b.aan.example/', 'http://aan/']) {
      expect(m.match(normalizeUrl(url), 'host-to-guest')).toBeUndefined();
    }
    expect(m.match(normalizeUrl('http://c.b.ac0.example/'), 'host-to-guest')?.ref.id).toBe('deep');
  });
});

describe('the host labels read while normalizing', () => {
  it('are those of the URL matched, whatever was normalized in between', () => {
    const m = compileUrlMatcher(
      compile([
        { id: 'a', match: { domainSuffix: 'a.example' }, target: 'guest' },
        { id: 'b', match: { domainSuffix: 'b.example' }, target: 'host' },
      ]),
    );
    const a = normalizeUrl('http://x.a.example/');
    const b = normalizeUrl('http://x.b.example/');
    expect(m.match(a, 'host-to-guest')?.ref.id).toBe('a');
    expect(m.match(b, 'host-to-guest')?.ref.id).toBe('b');
    expect(m.match({ ...a, host: 'y.b.example' }, 'host-to-guest')?.ref.id).toBe('b');
    normalizeUrl('http://x.a.example/');
    expect(m.match(b, 'host-to-guest')?.ref.id).toBe('b');
  });

  it('are read again when a path condition normalizes another URL while the matcher runs', () => {
    const [general, nosy, exact] = compile([
      { id: 'general', match: { domainSuffix: 'example' }, target: 'host' },
      { id: 'nosy', match: { domainSuffix: 'x.example' }, target: 'guest' },
      { id: 'exact', match: { host: 'a.x.example' }, target: 'guest' },
    ]);
    if (general === undefined || nosy === undefined || exact === undefined) throw new Error('rules did not compile');
    const path = {
      text: '/',
      literalLength: 1,
      test: (): boolean => normalizeUrl('http://p.q.r.s.t/').host === '', // never true
    };
    const m = compileUrlMatcher([general, { ...nosy, path }, exact]);
    expect(m.match(normalizeUrl('http://a.x.example/'), 'host-to-guest')?.ref.id).toBe('exact');
  });
});

describe('precedence', () => {
  it('most specific wins: exact host, then the longest suffix or prefix, then path, then scheme and port', () => {
    const rules = compile([
      { id: 'any', match: { url: '*' }, target: 'host' },
      { id: 'short', match: { domainSuffix: 'com' }, target: 'host' },
      { id: 'long', match: { domainSuffix: 'b.com' }, target: 'guest' },
      { id: 'long-path', match: { domainSuffix: 'b.com' }, pathPrefix: '/app', target: 'host' },
      { id: 'long-path-longer', match: { domainSuffix: 'b.com' }, pathPrefix: '/app/admin', target: 'guest' },
      { id: 'long-https', match: { domainSuffix: 'b.com' }, scheme: 'https', target: 'host' },
      { id: 'exact', match: { host: 'x.b.com' }, target: 'host' },
    ]);
    const m = compileUrlMatcher(rules);
    const id = (u: string): string | undefined => m.match(normalizeUrl(u), 'host-to-guest')?.ref.id;
    expect(id('http://a.com/')).toBe('short');
    expect(id('http://a.b.com/')).toBe('long');
    expect(id('http://a.b.com/app/x')).toBe('long-path');
    expect(id('http://a.b.com/app/admin/x')).toBe('long-path-longer');
    expect(id('https://a.b.com/')).toBe('long-https');
    expect(id('https://x.b.com/app/admin')).toBe('exact');
    expect(id('http://example.org/')).toBe('any');
  });

  it('equally specific rules: the one listed first wins', () => {
    const rules = compile([
      { id: 'first', match: { domainSuffix: 'contoso.com' }, target: 'guest' },
      { id: 'second', match: { domainSuffix: 'Contoso.COM' }, target: 'host' },
    ]);
    expect(compileUrlMatcher(rules).match(normalizeUrl('http://contoso.com/'), 'host-to-guest')?.ref.id).toBe('first');
    expect(
      compileUrlMatcher([...rules].reverse()).match(normalizeUrl('http://contoso.com/'), 'host-to-guest')?.ref.id,
    ).toBe('second');
  });

  it('as-given: the first matching rule in the order given, however general', () => {
    const rules = compile([
      { id: 'general', match: { domainSuffix: 'com' }, target: 'host' },
      { id: 'specific', match: { host: 'a.contoso.com' }, target: 'guest' },
    ]);
    const n = normalizeUrl('http://a.contoso.com/');
    expect(compileUrlMatcher(rules, { precedence: 'as-given' }).match(n, 'host-to-guest')?.ref.id).toBe('general');
    expect(compileUrlMatcher(rules).match(n, 'host-to-guest')?.ref.id).toBe('specific');
  });

  it('a rule whose conditions fail gives way to a less specific one', () => {
    const rules = compile([
      { id: 'suffix', match: { domainSuffix: 'contoso.com' }, target: 'guest' },
      { id: 'exact-https', match: { host: 'a.contoso.com' }, scheme: 'https', target: 'host' },
    ]);
    const m = compileUrlMatcher(rules);
    expect(m.match(normalizeUrl('http://a.contoso.com/'), 'host-to-guest')?.ref.id).toBe('suffix');
    expect(m.match(normalizeUrl('https://a.contoso.com/'), 'host-to-guest')?.ref.id).toBe('exact-https');
  });
});

// --- properties -----------------------------------------------------------------------------

const LABELS = ['a', 'b', 'xn--bcher-kva'];
const name = fc.array(fc.constantFrom(...LABELS), { minLength: 1, maxLength: 3 }).map((l) => l.join('.'));
const octet = fc.constantFrom(0, 1, 255);
const ipv4 = fc.tuple(fc.constantFrom(10, 192), octet, octet, octet).map((p) => p.join('.'));
const ipv6 = fc
  .tuple(fc.constantFrom('fd00', 'fd01', 'fe80', '2001'), fc.constantFrom('0', '1', 'ff'), fc.constantFrom('1', '2'))
  .map(([a, b, c]) => `${a}:${b}::${c}`);
const path = fc.constantFrom(
  '/',
  '/app',
  '/app/',
  '/app/x',
  '/apple',
  '/x/app',
  '/cgi-bin/a',
  '/ap',
  '/APP',
  '/app?a=1',
  '/x',
);
const rarely = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.oneof({ weight: 3, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: arb });
const ruleArb: fc.Arbitrary<UrlRuleInput> = fc
  .record({
    match: fc.oneof(
      name.map((host) => ({ host })),
      ipv4.map((host) => ({ host })),
      name.map((domainSuffix) => ({ domainSuffix })),
      name.map((subdomainsOf) => ({ subdomainsOf })),
      fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })).map(([a, l]) => ({ ipPrefix: `${a}/${l}` })),
      fc.tuple(ipv6, fc.integer({ min: 0, max: 128 })).map(([a, l]) => ({ ipPrefix: `${a}/${l}` })),
      fc.constant({ localNames: true as const }),
      fc
        .tuple(
          fc.constantFrom('http://', 'https://', '*://', ''),
          fc.oneof(
            fc.constant('*'),
            name.map((n) => `*.${n}`),
            name,
            ipv4,
          ),
          fc.constantFrom('', ':8080', ':*'),
          fc.constantFrom('', '/app', '/app/*', '/*/x', '/cgi-bin/*', '/ap*', '/app?a=*', '/x'),
        )
        .map(([s, h, p, pa]) => ({ url: `${s}${h}${p}${pa}` })),
    ),
    pathPrefix: rarely(fc.constantFrom('/app', '/app/', '/x', '/a')),
    scheme: rarely(fc.constantFrom('http' as const, 'https' as const)),
    port: rarely(fc.constantFrom(80, 443, 8080)),
    direction: fc.constantFrom('any' as const, 'any' as const, 'host-to-guest' as const, 'guest-to-host' as const),
    target: fc.constantFrom('host' as const, 'guest' as const),
  })
  .map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as UrlRuleInput);
const urlArb = fc
  .tuple(
    fc.constantFrom('http', 'https'),
    fc.oneof(
      name,
      ipv4,
      ipv6.map((a) => `[${a}]`),
    ),
    fc.constantFrom('', ':8080', ':443'),
    path,
  )
  .map(([s, h, p, pa]) => `${s}://${h}${p}${pa}`);

function compileValid(rules: UrlRuleInput[]): CompiledUrlRule[] {
  const out: CompiledUrlRule[] = [];
  for (const r of rules) {
    try {
      out.push(...compile([r]));
    } catch {
      // contradictory generated rules (pattern path plus pathPrefix, ...) are refused; skip them
    }
  }
  return out;
}

describe('URL matcher properties', () => {
  it('the compiled matcher decides exactly as the linear scan, in both precedence modes', () => {
    let compiledRules = 0;
    let matches = 0;
    fc.assert(
      fc.property(
        fc.array(ruleArb, { minLength: 10, maxLength: 40 }),
        fc.array(urlArb, { minLength: 5, maxLength: 20 }),
        fc.constantFrom('most-specific' as const, 'as-given' as const),
        (rawRules, urls, precedence) => {
          const rules = compileValid(rawRules);
          compiledRules += rules.length;
          const compiled = compileUrlMatcher(rules, { precedence });
          const linear = linearUrlMatcher(rules, { precedence });
          for (const u of urls) {
            const n = normalizeUrl(u);
            for (const dir of ['host-to-guest', 'guest-to-host'] as const) {
              const rule = compiled.match(n, dir);
              expect(rule).toBe(linear.match(n, dir));
              if (rule) matches++;
            }
          }
        },
      ),
      { numRuns: 400 },
    );
    // The generators make rules that compile and URLs that they match, not just misses.
    expect(compiledRules).toBeGreaterThan(1000);
    expect(matches).toBeGreaterThan(1000);
  });

  it('a domain suffix matches on a label boundary only', () => {
    const word = fc.stringMatching(/^[a-z0-9-]{1,6}$/);
    fc.assert(
      fc.property(
        fc.array(word, { minLength: 1, maxLength: 3 }),
        fc.string({ maxLength: 6 }).map((s) => s.replace(/[^a-z0-9.-]/g, '')),
        (suffixLabels, prefix) => {
          const suffix = suffixLabels.join('.');
          const host = `${prefix}${suffix}`.replace(/^\.+/, '');
          if (/\.\./.test(host) || /(^|\.)(\d+|0x[0-9a-f]*)$/.test(host) || /(^|\.)(\d+|0x[0-9a-f]*)$/.test(suffix))
            return;
          let n;
          try {
            n = normalizeUrl(`http://${host}/`);
          } catch {
            return;
          }
          const m = compileUrlMatcher(compile([{ match: { domainSuffix: suffix }, target: 'guest' }]));
          const expected = host === suffix || host.endsWith(`.${suffix}`);
          expect(m.match(n, 'host-to-guest') !== undefined).toBe(expected);
          const sub = compileUrlMatcher(compile([{ match: { subdomainsOf: suffix }, target: 'guest' }]));
          expect(sub.match(n, 'host-to-guest') !== undefined).toBe(host.endsWith(`.${suffix}`));
        },
      ),
    );
  });

  it('an IPv4 prefix matches exactly the addresses that share its first bits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 0, max: 32 }),
        (addr, net, len) => {
          const dotted = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
          const bits = (n: number): string => n.toString(2).padStart(32, '0').slice(0, len);
          const m = compileUrlMatcher(compile([{ match: { ipPrefix: `${dotted(net)}/${len}` }, target: 'guest' }]));
          expect(m.match(normalizeUrl(`http://${addr}/`), 'host-to-guest') !== undefined).toBe(
            bits(addr) === bits(net),
          );
        },
      ),
    );
  });

  it('an IPv6 prefix matches exactly the addresses that share its first bits', () => {
    const big = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
    fc.assert(
      fc.property(big, big, fc.integer({ min: 0, max: 128 }), (addr, net, len) => {
        const hex = (n: bigint): string =>
          n
            .toString(16)
            .padStart(32, '0')
            .replace(/(.{4})(?!$)/g, '$1:');
        const bits = (n: bigint): string => n.toString(2).padStart(128, '0').slice(0, len);
        if (addr >> 32n === 0xffffn || net >> 32n === 0xffffn) return; // IPv4-mapped: compared as IPv4
        const m = compileUrlMatcher(compile([{ match: { ipPrefix: `${hex(net)}/${len}` }, target: 'guest' }]));
        expect(m.match(normalizeUrl(`http://[${hex(addr)}]/`), 'host-to-guest') !== undefined).toBe(
          bits(addr) === bits(net),
        );
      }),
    );
  });
});
