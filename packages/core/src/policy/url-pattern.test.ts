import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeUrl } from './url-normalize.js';
import { parseUrlPattern, pathPrefixCondition } from './url-pattern.js';

describe('parseUrlPattern', () => {
  it('reads the MED-V v2 form', () => {
    const p = parseUrlPattern('http://*.contoso.com/app/*');
    expect(p.scheme).toBe('http');
    expect(p.host).toEqual({ kind: 'subdomains', suffix: 'contoso.com' });
    expect(p.port).toBeUndefined();
    expect(p.path?.test('/app/x', '')).toBe(true);
    expect(p.path?.test('/app/', '')).toBe(true);
    expect(p.path?.test('/app', '')).toBe(false);
    expect(p.path?.test('/apps/x', '')).toBe(false);
  });

  it.each([
    ['*', undefined, { kind: 'any' }, undefined],
    ['*://*', undefined, { kind: 'any' }, undefined],
    ['HTTPS://Portal.Example:8443', 'https', { kind: 'exact', host: { host: 'portal.example', kind: 'name' } }, 8443],
    ['contoso.com', undefined, { kind: 'exact', host: { host: 'contoso.com', kind: 'name' } }, undefined],
    ['*.bücher.example', undefined, { kind: 'subdomains', suffix: 'xn--bcher-kva.example' }, undefined],
    [
      'http://10.1.2.3:*/x',
      'http',
      { kind: 'exact', host: { host: '10.1.2.3', kind: 'ipv4', ip: { family: 4, value: 167838211 } } },
      undefined,
    ],
    [
      'http://[::1]:8080/',
      'http',
      { kind: 'exact', host: { host: '[::1]', kind: 'ipv6', ip: { family: 6, value: 1n } } },
      8080,
    ],
    [
      'fe80::1',
      undefined,
      { kind: 'exact', host: { host: '[fe80::1]', kind: 'ipv6', ip: { family: 6, value: (0xfe80n << 112n) | 1n } } },
      undefined,
    ],
  ])('%s', (text, scheme, host, port) => {
    const p = parseUrlPattern(text);
    expect(p.scheme).toBe(scheme);
    expect(p.host).toEqual(host);
    expect(p.port).toBe(port);
  });

  it('treats a path without * as a prefix on a segment boundary', () => {
    const p = parseUrlPattern('http://intranet/app');
    for (const [path, ok] of [
      ['/app', true],
      ['/app/', true],
      ['/app/x/y', true],
      ['/apple', false],
      ['/ap', false],
      ['/x/app', false],
    ] as const) {
      expect(p.path?.test(path, '')).toBe(ok);
    }
  });

  it('matches the query when the pattern names one', () => {
    const p = parseUrlPattern('http://intranet/report.aspx?id=*');
    expect(p.path?.test('/report.aspx', '?id=7')).toBe(true);
    expect(p.path?.test('/report.aspx', '?other=7')).toBe(false);
    expect(parseUrlPattern('http://intranet?x=1').path?.test('/any/where', '?x=1')).toBe(true);
  });

  it('any path: /, /* or none', () => {
    for (const t of ['http://a.example', 'http://a.example/', 'http://a.example/*'])
      expect(parseUrlPattern(t).path).toBeUndefined();
  });

  it.each([
    ['', /empty/],
    ['gopher://x/', /scheme "gopher"/],
    ['http://www.*.com/', /whole leftmost label/],
    ['http://*.*.com/', /only one wildcard/],
    ['http://*.10.0.0.1/', /domain name, not an address/],
    ['http://u@host/', /user info/],
    ['http://host:0/', /between 1 and 65535/],
    ['http://host:70000/', /between 1 and 65535/],
    ['http://host/#frag', /fragment/],
    ['http:///x', /host is missing/],
    ['http://bad host/', /not a host|character/],
  ])('refuses %j', (text, reason) => {
    expect(() => parseUrlPattern(text)).toThrow(reason);
    try {
      parseUrlPattern(text);
    } catch (err) {
      expect((err as Error).message).toMatch(/^URL pattern .* is not valid: .*Expected \[scheme:\/\/\]host/);
    }
  });
});

describe('path conditions (properties)', () => {
  const segment = fc.stringMatching(/^[a-z0-9]{1,5}$/);
  const path = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`);

  it('a path prefix covers itself and what lies below it, never a longer sibling', () => {
    fc.assert(
      fc.property(path, path, (prefix, rest) => {
        const c = pathPrefixCondition(prefix);
        expect(c.test(prefix, '')).toBe(true);
        expect(c.test(`${prefix}${rest}`, '')).toBe(true);
        expect(c.test(`${prefix}x`, '')).toBe(false);
      }),
    );
  });

  it('a trailing * covers every path that starts with the literal part', () => {
    fc.assert(
      fc.property(path, fc.string({ maxLength: 8 }), (head, tail) => {
        const url = normalizeUrl(`http://h.example${head}/${encodeURIComponent(tail)}`);
        expect(parseUrlPattern(`http://h.example${head}/*`).path?.test(url.path, url.query)).toBe(true);
      }),
    );
  });

  it('a * in the middle matches any run of characters, and the rest literally', () => {
    fc.assert(
      fc.property(segment, segment, segment, (a, mid, b) => {
        const glob = parseUrlPattern(`http://h/${a}/*/${b}`).path;
        expect(glob?.test(`/${a}/${mid}/${b}`, '')).toBe(true);
        expect(glob?.test(`/${a}/${mid}/x/${b}`, '')).toBe(true);
        expect(glob?.test(`/${a}/${mid}/${b}x`, '')).toBe(false);
        // Regular-expression characters in a pattern are literal.
        expect(parseUrlPattern('http://h/a.b(c)+/*').path?.test('/a.b(c)+/x', '')).toBe(true);
        expect(parseUrlPattern('http://h/a.b(c)+/*').path?.test('/aXb(c)+/x', '')).toBe(false);
      }),
    );
  });
});

describe('literal prefixes of path conditions', () => {
  const pathish = fc
    .array(fc.constantFrom('/', 'a', 'app', 'x', '%41', '?', '*', '.', 'A'), { maxLength: 6 })
    .map((p) => `/${p.join('')}`);
  it('a condition that says it is a literal prefix tests exactly as that prefix', () => {
    let prefixes = 0;
    fc.assert(
      fc.property(pathish, pathish, fc.boolean(), (written, path, asPrefix) => {
        let c;
        try {
          c = asPrefix ? pathPrefixCondition(written) : parseUrlPattern(`http://h${written}`).path;
        } catch {
          return; // a pattern the parser refuses
        }
        if (c?.prefix === undefined) return;
        prefixes++;
        const { text, segment } = c.prefix;
        const literal =
          path.startsWith(text) && (!segment || path.length === text.length || path.charCodeAt(text.length) === 47);
        expect(c.test(path, '')).toBe(literal);
        expect(c.test(path, '?q')).toBe(literal);
      }),
      { numRuns: 2000 },
    );
    expect(prefixes).toBeGreaterThan(500);
  });

  it('a pattern with * before its end, or a query, is no literal prefix', () => {
    expect(parseUrlPattern('http://h/a/*/b').path?.prefix).toBeUndefined();
    expect(parseUrlPattern('http://h/a?x=*').path?.prefix).toBeUndefined();
    expect(parseUrlPattern('http://h/a/*').path?.prefix).toEqual({ text: '/a/', segment: false });
    expect(parseUrlPattern('http://h/a').path?.prefix).toEqual({ text: '/a', segment: true });
    expect(pathPrefixCondition('/a/').prefix).toEqual({ text: '/a/', segment: false });
  });
});
