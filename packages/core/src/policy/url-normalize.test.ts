import { domainToASCII } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { fastNormalize } from './url-fast.js';
import { normalizeHost, normalizePercentEncoding, normalizeUrl, parseAndNormalize } from './url-normalize.js';

describe('normalizeUrl: tricky URLs', () => {
  const table: [string, { href: string; host: string; kind: string; port: number }][] = [
    [
      'HTTP://WWW.Contoso.COM/App',
      { href: 'http://www.contoso.com/App', host: 'www.contoso.com', kind: 'name', port: 80 },
    ],
    ['http://www.contoso.com./', { href: 'http://www.contoso.com/', host: 'www.contoso.com', kind: 'name', port: 80 }],
    ['http://www.contoso.com../', { href: 'http://www.contoso.com/', host: 'www.contoso.com', kind: 'name', port: 80 }],
    ['http://user:secret@contoso.com/', { href: 'http://contoso.com/', host: 'contoso.com', kind: 'name', port: 80 }],
    ['http://@contoso.com/', { href: 'http://contoso.com/', host: 'contoso.com', kind: 'name', port: 80 }],
    ['http://contoso.com:80/', { href: 'http://contoso.com/', host: 'contoso.com', kind: 'name', port: 80 }],
    ['http://contoso.com:0080/', { href: 'http://contoso.com/', host: 'contoso.com', kind: 'name', port: 80 }],
    ['https://contoso.com:443/x', { href: 'https://contoso.com/x', host: 'contoso.com', kind: 'name', port: 443 }],
    [
      'https://contoso.com:8443/x',
      { href: 'https://contoso.com:8443/x', host: 'contoso.com', kind: 'name', port: 8443 },
    ],
    [
      'ftp://files.contoso.com/pub',
      { href: 'ftp://files.contoso.com/pub', host: 'files.contoso.com', kind: 'name', port: 21 },
    ],
    ['http://contoso.com/a/./b/../c', { href: 'http://contoso.com/a/c', host: 'contoso.com', kind: 'name', port: 80 }],
    ['http://contoso.com/a/%2e%2E/c', { href: 'http://contoso.com/c', host: 'contoso.com', kind: 'name', port: 80 }],
    [
      'http://contoso.com/%7euser/%41%2f%2F',
      { href: 'http://contoso.com/~user/A%2F%2F', host: 'contoso.com', kind: 'name', port: 80 },
    ],
    ['http://contoso.com\\app\\x', { href: 'http://contoso.com/app/x', host: 'contoso.com', kind: 'name', port: 80 }],
    [
      'http://contoso.com/p?q=1#frag',
      { href: 'http://contoso.com/p?q=1', host: 'contoso.com', kind: 'name', port: 80 },
    ],
    ['http://%63ontoso.com/', { href: 'http://contoso.com/', host: 'contoso.com', kind: 'name', port: 80 }],
    ['  http://contoso.com/  ', { href: 'http://contoso.com/', host: 'contoso.com', kind: 'name', port: 80 }],
    [
      'http://bücher.example/',
      { href: 'http://xn--bcher-kva.example/', host: 'xn--bcher-kva.example', kind: 'name', port: 80 },
    ],
    [
      'http://BÜCHER.example./',
      { href: 'http://xn--bcher-kva.example/', host: 'xn--bcher-kva.example', kind: 'name', port: 80 },
    ],
    [
      'http://xn--bcher-kva.example/',
      { href: 'http://xn--bcher-kva.example/', host: 'xn--bcher-kva.example', kind: 'name', port: 80 },
    ],
    ['http://intranet/', { href: 'http://intranet/', host: 'intranet', kind: 'name', port: 80 }],
    ['http://0x7f.1/', { href: 'http://127.0.0.1/', host: '127.0.0.1', kind: 'ipv4', port: 80 }],
    ['http://2130706433/', { href: 'http://127.0.0.1/', host: '127.0.0.1', kind: 'ipv4', port: 80 }],
    ['http://0177.0.0.1/', { href: 'http://127.0.0.1/', host: '127.0.0.1', kind: 'ipv4', port: 80 }],
    ['http://10.20.0x10.1/', { href: 'http://10.20.16.1/', host: '10.20.16.1', kind: 'ipv4', port: 80 }],
    ['http://10.20.1.2./', { href: 'http://10.20.1.2/', host: '10.20.1.2', kind: 'ipv4', port: 80 }],
    ['http://10.20.1.2../', { href: 'http://10.20.1.2/', host: '10.20.1.2', kind: 'ipv4', port: 80 }],
    ['http://[::ffff:10.20.1.2]/', { href: 'http://10.20.1.2/', host: '10.20.1.2', kind: 'ipv4', port: 80 }],
    [
      'http://[2001:DB8:0:0::1]:8080/',
      { href: 'http://[2001:db8::1]:8080/', host: '[2001:db8::1]', kind: 'ipv6', port: 8080 },
    ],
    ['http://[::1]/', { href: 'http://[::1]/', host: '[::1]', kind: 'ipv6', port: 80 }],
  ];
  it.each(table)('%s', (input, expected) => {
    const n = normalizeUrl(input);
    expect({ href: n.href, host: n.host, kind: n.kind, port: n.port }).toEqual(expected);
    expect(parseAndNormalize(input).href).toBe(expected.href);
  });

  const bad: [string, RegExp][] = [
    ['', /it is empty/],
    ['   ', /it is empty/],
    ['intranet.example/app', /no scheme/],
    ['javascript:alert(1)', /scheme "javascript"/],
    ['file:///etc/passwd', /scheme "file"/],
    ['mailto:someone@contoso.com', /scheme "mailto"/],
    ['http://', /not a valid URL/],
    ['http://[::1/', /not a valid URL/],
    ['http://exa mple.com/', /not a valid URL/],
    ['http://contoso.com:99999/', /not a valid URL/],
    ['http://a..b/', /empty label/],
    ['http://./', /empty/],
    ['http://1.2.3.4.5/', /not a valid URL/],
  ];
  it.each(bad)('refuses %j with a clear error', (input, reason) => {
    let caught: unknown;
    try {
      normalizeUrl(input);
    } catch (err) {
      caught = err;
    }
    expect(TandemError.is(caught, 'TANDEM_INVALID_INPUT')).toBe(true);
    const e = caught as TandemError;
    expect(e.message).toMatch(/^Cannot decide on URL/);
    expect(e.message).toMatch(/was not redirected/);
    expect(String(e.details['reason'])).toMatch(reason);
  });
});

describe('normalizeHost', () => {
  it('normalizes rule hosts the way URLs are normalized', () => {
    expect(normalizeHost('Contoso.COM.')).toEqual({ host: 'contoso.com', kind: 'name' });
    expect(normalizeHost('bücher.example').host).toBe('xn--bcher-kva.example');
    expect(normalizeHost('0x7f.1')).toMatchObject({ host: '127.0.0.1', kind: 'ipv4' });
    expect(normalizeHost('::1')).toMatchObject({ host: '[::1]', kind: 'ipv6' });
    expect(normalizeHost('[2001:DB8::0:1]')).toMatchObject({ host: '[2001:db8::1]', kind: 'ipv6' });
    expect(normalizeHost('::ffff:10.0.0.1')).toMatchObject({ host: '10.0.0.1', kind: 'ipv4' });
  });
  it.each(['', 'a/b', 'user@host', 'host:8080', '*.contoso.com', 'a b', 'a..b'])('refuses %j', (text) => {
    expect(() => normalizeHost(text)).toThrow(/is not a host/);
  });
});

// --- properties -----------------------------------------------------------------------------

const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?$/);
const nameHost = fc
  .array(label, { minLength: 1, maxLength: 4 })
  .map((ls) => ls.join('.'))
  .filter((h) => !/(^|\.)(\d+|0x[0-9a-f]*)$/.test(h) && !h.includes('xn--'));
const pathChars = fc.constantFrom(
  ..."abcXYZ019-._~!$&'()*+,;=:@%/".split(''),
  '%41',
  '%7e',
  '%2F',
  '%2e',
  '%zz',
  '/./',
  '/../',
  '..',
  ' ',
  'é',
  '?',
  '#',
);
const safePath = fc
  .array(fc.constantFrom(...'abcXYZ019-._~!$&()*+,;=:@/'.split(''), '%41', '%2F', '%3a'), { maxLength: 12 })
  .map((cs) => `/${cs.join('')}`);
const pathText = fc.array(pathChars, { maxLength: 12 }).map((cs) => `/${cs.join('')}`);

describe('normalizeUrl properties', () => {
  it('is idempotent: a normalized URL normalizes to itself', () => {
    fc.assert(
      fc.property(fc.webUrl({ withQueryParameters: true, withFragments: true }), (url) => {
        let n;
        try {
          n = normalizeUrl(url);
        } catch {
          return; // webUrl can produce hosts WHATWG refuses; those are errors, never redirects
        }
        expect(normalizeUrl(n.href)).toEqual(n);
      }),
      { numRuns: 500 },
    );
  });

  it('the fast path gives exactly what the WHATWG parser gives', () => {
    const hostText = fc.oneof(
      nameHost,
      nameHost.map((h) => h.toUpperCase()),
      nameHost.map((h) => `${h}.`),
      fc.ipV4().map((h) => `${h}.`),
      fc.ipV4(),
      fc.ipV4Extended(),
      fc.constantFrom('xn--bcher-kva.example', '0x7f.1', '1.2.3.04', '256.1.1.1', 'a.0x10', 'a.b.123', 'a-.b', 'A.com'),
    );
    const urlText = fc
      .tuple(
        fc.constantFrom('http', 'https', 'http', 'https', 'HTTP', 'ftp'),
        hostText,
        fc.option(fc.oneof(fc.integer({ min: 0, max: 70000 }).map(String), fc.constantFrom('080', '443', '80', '')), {
          nil: undefined,
        }),
        fc.option(fc.oneof(pathText, safePath), { nil: undefined }),
        fc.option(
          fc.array(pathChars, { maxLength: 6 }).map((cs) => `?${cs.join('')}`),
          { nil: undefined },
        ),
        fc.option(
          fc.string({ maxLength: 5 }).map((s) => `#${s}`),
          { nil: undefined },
        ),
      )
      .map(
        ([s, h, port, path, q, f]) =>
          `${s}://${h}${port !== undefined ? `:${port}` : ''}${path ?? ''}${q ?? ''}${f ?? ''}`,
      );
    let fastHits = 0;
    fc.assert(
      fc.property(urlText, (url) => {
        const fast = fastNormalize(url);
        if (fast === undefined) return;
        fastHits++;
        expect(fast).toEqual(parseAndNormalize(url));
      }),
      { numRuns: 5000 },
    );
    expect(fastHits).toBeGreaterThan(500); // the generator does exercise the fast path
  });

  it('ignores case and trailing dots in the host, and the scheme case', () => {
    fc.assert(
      fc.property(nameHost, pathText, (host, path) => {
        let base;
        try {
          base = normalizeUrl(`http://${host}${path}`);
        } catch {
          return;
        }
        expect(normalizeUrl(`HTTP://${host.toUpperCase()}.${path}`)).toEqual(base);
        expect(normalizeUrl(`http://${host}..${path}`)).toEqual(base);
      }),
    );
  });

  it('drops user info and default ports', () => {
    fc.assert(
      fc.property(
        nameHost,
        fc.stringMatching(/^[a-z0-9]{1,8}$/),
        fc.stringMatching(/^[a-z0-9]{0,8}$/),
        (host, user, pw) => {
          const base = normalizeUrl(`https://${host}/x`);
          expect(normalizeUrl(`https://${user}:${pw}@${host}:443/x`)).toEqual(base);
          expect(normalizeUrl(`http://${user}@${host}:80/x`).href).toBe(`http://${host}/x`);
        },
      ),
    );
  });

  it('reads IPv4 in every form as the same address', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => {
        const bytes = [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
        const dotted = bytes.join('.');
        const forms = [
          String(n),
          `0x${n.toString(16)}`,
          bytes.map((b) => `0${b.toString(8)}`).join('.'),
          bytes.map((b) => `0x${b.toString(16)}`).join('.'),
          `${bytes[0]}.${n & 0xffffff}`,
          `${bytes[0]}.${bytes[1]}.${n & 0xffff}`,
          `${dotted}.`,
          `[::ffff:${dotted}]`,
        ];
        for (const f of forms) {
          const u = normalizeUrl(`http://${f}/`);
          expect(u.host).toBe(dotted);
          expect(u.kind).toBe('ipv4');
          expect(u.ip).toEqual({ family: 4, value: n });
        }
      }),
    );
  });

  it('decodes escapes of unreserved characters, and only those', () => {
    const unreserved = fc.constantFrom(...'AZaz09-._~'.split(''));
    fc.assert(
      fc.property(
        fc.array(fc.tuple(unreserved, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 20 }),
        (chars) => {
          const plain = chars.map(([c]) => c).join('');
          const encoded = chars
            .map(([c, enc, lower]) => {
              if (!enc) return c;
              const hex = c.charCodeAt(0).toString(16);
              return `%${lower ? hex.toLowerCase() : hex.toUpperCase()}`;
            })
            .join('');
          if (/^\.{1,2}$/.test(plain)) return; // "." and ".." are dot segments
          expect(normalizeUrl(`http://h.example/p/${encoded}`).path).toBe(
            normalizeUrl(`http://h.example/p/${plain}`).path,
          );
          expect(normalizePercentEncoding(`%2f%3A${encoded}`)).toBe(`%2F%3A${plain}`);
        },
      ),
    );
  });

  it('compares internationalized names in punycode', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('ü', 'ß', 'é', 'ñ', 'д', 'a', 'b', 'x'), { minLength: 1, maxLength: 8 }),
        (cs) => {
          const unicode = `${cs.join('')}.example`;
          const ascii = domainToASCII(unicode);
          if (ascii === '') return;
          expect(normalizeUrl(`http://${unicode}/`).host).toBe(ascii);
          expect(normalizeUrl(`http://${ascii}/`).host).toBe(ascii);
          expect(normalizeHost(unicode).host).toBe(ascii);
        },
      ),
    );
  });
});

describe('parseIpv4', () => {
  it('reads dotted quads and nothing else', async () => {
    const { parseIpv4 } = await import('./ip.js');
    fc.assert(
      fc.property(fc.ipV4(), (a) => {
        const parts = a.split('.').map(Number);
        expect(parseIpv4(a)).toBe(((parts[0]! * 256 + parts[1]!) * 256 + parts[2]!) * 256 + parts[3]!);
      }),
    );
    for (const bad of [
      '',
      '1.2.3',
      '1.2.3.4.5',
      '1.2.3.256',
      '1..2.3',
      '1.2.3.4.',
      '.1.2.3',
      '1.2.3.a',
      '1234.1.1.1',
      '1.2.3.-4',
    ]) {
      expect(parseIpv4(bad)).toBeUndefined();
    }
  });
});
