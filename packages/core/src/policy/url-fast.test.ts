import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HostLabels, hostLabels } from './host-labels.js';
import { formatUrlIpv6, parseUrlIpv4, parseUrlIpv6 } from './ip.js';
import { fastNormalize } from './url-fast.js';
import { parseAndNormalize, type NormalizedUrl } from './url-normalize.js';

/** The full parser's answer, or undefined where it refuses the URL. */
function reference(url: string): NormalizedUrl | undefined {
  try {
    return parseAndNormalize(url);
  } catch {
    return undefined;
  }
}

/** The fast path must give exactly the full parser's result, property order included. */
function expectSameAsParser(url: string): NormalizedUrl | undefined {
  const fast = fastNormalize(url);
  if (fast === undefined) return undefined;
  const slow = reference(url);
  expect(slow, `the fast path accepts ${JSON.stringify(url)}, the parser refuses it`).toBeDefined();
  expect(fast).toStrictEqual(slow);
  expect(Object.keys(fast)).toEqual(Object.keys(slow ?? {}));
  return fast;
}

describe('fastNormalize: URLs it takes', () => {
  const taken: [string, string][] = [
    ['http://www.contoso.com/app?q=1', 'http://www.contoso.com/app?q=1'],
    ['https://contoso.com', 'https://contoso.com/'],
    ['http://WWW.Contoso.COM./App', 'http://www.contoso.com/App'],
    ['http://contoso.com:80/', 'http://contoso.com/'],
    ['https://contoso.com:443/', 'https://contoso.com/'],
    ['http://contoso.com:0080/', 'http://contoso.com/'],
    ['http://contoso.com:/x', 'http://contoso.com/x'],
    ['http://contoso.com:8080', 'http://contoso.com:8080/'],
    ['http://contoso.com?', 'http://contoso.com/'],
    ['http://contoso.com/p?#f', 'http://contoso.com/p'],
    ['http://contoso.com/p#f?x', 'http://contoso.com/p'],
    ['http://user:pw@contoso.com/', 'http://contoso.com/'],
    ['http://@contoso.com/', 'http://contoso.com/'],
    ['http://a@b@contoso.com/', 'http://contoso.com/'],
    ['http://user:pw@contoso.com:80/a/../b/%7e', 'http://contoso.com/b/~'],
    ['http://[::1]@contoso.com/', 'http://contoso.com/'],
    ['http://contoso.com/a/./b/../c', 'http://contoso.com/a/c'],
    ['http://contoso.com/a/%2e%2E/c', 'http://contoso.com/c'],
    ['http://contoso.com/a/.%2e', 'http://contoso.com/'],
    ['http://contoso.com/a/b/.', 'http://contoso.com/a/b/'],
    ['http://contoso.com/../../x', 'http://contoso.com/x'],
    ['http://contoso.com/a..b/.../.x', 'http://contoso.com/a..b/.../.x'],
    ['http://contoso.com/%7euser/%41%2f%2F%zz%', 'http://contoso.com/~user/A%2F%2F%zz%'],
    ['http://contoso.com/a%2eb', 'http://contoso.com/a.b'],
    ['http://0x7f.1/', 'http://127.0.0.1/'],
    ['http://2130706433/', 'http://127.0.0.1/'],
    ['http://0177.0.0.1/', 'http://127.0.0.1/'],
    ['http://0X0A.0x14.0x1e.5:8080/', 'http://10.20.30.5:8080/'],
    ['http://10.20.1.2./', 'http://10.20.1.2/'],
    ['http://1.2.3/', 'http://1.2.0.3/'],
    ['http://0x/', 'http://0.0.0.0/'],
    ['http://[::FFFF:a14:102]/', 'http://10.20.1.2/'],
    ['http://[2001:DB8:0:0::1]:8080/', 'http://[2001:db8::1]:8080/'],
    ['http://[0:0:0:0:0:0:0:1]/', 'http://[::1]/'],
    ['http://[1:0:0:2:0:0:0:3]/', 'http://[1:0:0:2::3]/'],
    ['http://[1:0:2:3:4:5:6:7]/', 'http://[1:0:2:3:4:5:6:7]/'],
    ['http://[::]/', 'http://[::]/'],
    ['http://intranet/', 'http://intranet/'],
    ['http://a-.b--c.example/', 'http://a-.b--c.example/'],
  ];
  it.each(taken)('%s is %s, as the WHATWG parser says', (url, href) => {
    const n = expectSameAsParser(url);
    expect(n?.href).toBe(href);
  });

  it('hands back the input itself as href when it is already canonical', () => {
    for (const url of ['http://www.contoso.com/app?q=1', 'https://10.1.2.3:8443/x', 'http://[fd00::1]/', 'http://a/']) {
      expect(fastNormalize(url)?.href).toBe(url);
    }
  });
});

describe('fastNormalize: URLs it leaves to the WHATWG parser', () => {
  const left = [
    'HTTP://contoso.com/',
    'ftp://contoso.com/',
    'http:/contoso.com/',
    'http:\\\\contoso.com/',
    'http:///contoso.com/',
    ' http://contoso.com/',
    'http://contoso.com/ ',
    'http://con\ttoso.com/',
    'http://bücher.example/',
    'http://xn--bcher-kva.example/',
    'http://a.XN--bcher-kva.example/',
    'http://%63ontoso.com/',
    'http://contoso.com\\app',
    'http://a..b/',
    'http://.a/',
    'http://a.b../',
    'http://contoso.com:99999/',
    'http://contoso.com:8o/',
    'http://1.2.3.4.5/',
    'http://1.2.3.256/',
    'http://08.1.2.3/',
    'http://a.0x10/',
    'http://a.b.123/',
    'http://[::1/',
    'http://[::1]x/',
    'http://[1.2.3.4]/',
    'http://[::ffff:1.2.3.4]/',
    'http://[12345::]/',
    'http://[1::2::3]/',
    'http://[1:2:3:4:5:6:7]/',
    'http://[1:2:3:4:5:6:7:8:9]/',
    'http://[fe80::1%25eth0]/',
    'http://user@/',
    'http://user@:80/',
    'http://contoso.com/a b',
    'http://contoso.com/é',
    'http://contoso.com/"',
    'http://contoso.com/?a b',
    "http://contoso.com/?'",
    'http://',
    '',
  ];
  it.each(left)('%j', (url) => {
    expect(fastNormalize(url)).toBeUndefined();
  });
});

// --- properties -----------------------------------------------------------------------------

const hexGroup = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16)),
  fc.constantFrom('0', '0', '00', '0000', 'FFFF', 'ffff', 'DB8', '12345', ''),
);
/** IPv6 text: eight groups, or fewer around a `::`, in any case, with the odd mistake. */
const ipv6Text = fc
  .tuple(fc.array(hexGroup, { minLength: 8, maxLength: 9 }), fc.nat(8), fc.nat(8), fc.boolean(), fc.boolean())
  .map(([groups, a, b, compress, mapped]) => {
    const g = mapped ? ['0', '0', '0', '0', '0', 'ffff', ...groups.slice(6)] : groups;
    if (!compress) return g.slice(0, 8).join(':');
    const from = Math.min(a, b);
    const to = Math.max(a, b);
    return `${g.slice(0, from).join(':')}::${g.slice(to).join(':')}`;
  });
const ipv4Part = fc.oneof(
  fc.integer({ min: 0, max: 255 }).map(String),
  fc.integer({ min: 0, max: 0xffffffff }).map((n) => `0x${n.toString(16)}`),
  fc.integer({ min: 0, max: 0xffffffff }).map((n) => `0${n.toString(8)}`),
  fc.integer({ min: 0, max: 0xffffffff }).map(String),
  fc.constantFrom('0', '00', '0x', '0X1F', '08', '256', '4294967296', 'a'),
);
const ipv4Text = fc.array(ipv4Part, { minLength: 1, maxLength: 5 }).map((p) => p.join('.'));
const label = fc.stringMatching(/^[a-zA-Z0-9-]{1,8}$/);
const nameText = fc
  .array(
    fc.oneof({ weight: 6, arbitrary: label }, { weight: 1, arbitrary: fc.constantFrom('xn--a', 'XN--', '1', '0x1f') }),
    {
      minLength: 1,
      maxLength: 4,
    },
  )
  .map((l) => l.join('.'));
const hostText = fc.oneof(
  nameText,
  nameText.map((h) => `${h}.`),
  ipv4Text,
  ipv4Text.map((h) => `${h}.`),
  ipv6Text.map((h) => `[${h}]`),
  fc.constantFrom('', '.', 'a..b', '[::1', 'bücher.example', '%61.example', 'a b'),
);
const userinfo = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  { weight: 2, arbitrary: fc.stringMatching(/^[a-z0-9:%@]{0,8}@$/) },
  { weight: 1, arbitrary: fc.constantFrom('[::1]@', 'ü@', 'a b@', 'a/b@', 'a?b@', 'a#b@', 'a\\b@') },
);
const port = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 2, arbitrary: fc.constantFrom(':', ':80', ':443', ':080', ':0', ':8080', ':65535', ':65536', ':1a') },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 70000 }).map((p) => `:${p}`) },
);
const segment = fc.oneof(
  { weight: 4, arbitrary: fc.stringMatching(/^[a-zA-Z0-9._~-]{0,6}$/) },
  {
    weight: 3,
    arbitrary: fc.constantFrom('.', '..', '%2e', '%2E', '.%2e', '%2e.', '%2E%2e', '...', '.a', 'a.', '%2e%2e%2e'),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom('%41', '%7e', '%7E', '%2f', '%2F', '%25', '%zz', '%', '%4', '%%41', "!$&'()*+,;=:@"),
  },
  { weight: 1, arbitrary: fc.constantFrom('é', ' ', '\\', '"', '<', '^', '`', '{', '|', '\t') },
);
const pathText = fc.oneof(
  { weight: 1, arbitrary: fc.constant('') },
  { weight: 5, arbitrary: fc.array(segment, { maxLength: 5 }).map((s) => `/${s.join('/')}`) },
);
const queryText = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  { weight: 2, arbitrary: fc.stringMatching(/^\?[a-zA-Z0-9=&%/?]{0,8}$/) },
  { weight: 1, arbitrary: fc.constantFrom('?', "?'", '?a b', '?"', '?é', '?{}') },
);
const fragment = fc.constantFrom('', '', '', '#', '#x', '#a b', '#é');
const urlText = fc
  .tuple(
    fc.constantFrom('http://', 'https://', 'http://', 'https://', 'HTTP://', 'ftp://', 'http:/', 'http:///'),
    userinfo,
    hostText,
    port,
    pathText,
    queryText,
    fragment,
  )
  .map((parts) => parts.join(''));

const CANONICAL_REACH =
  /^https?:\/\/[a-z0-9.\-[\]:]+\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*(\?[A-Za-z0-9\-._~!$&()*+,;=:@/?%]+)?$/;

describe('fastNormalize properties', () => {
  it('gives exactly what the WHATWG parser gives, on random and tricky URLs', () => {
    const seen = { fast: 0, userinfo: 0, ipv6: 0, mapped: 0, oddIpv4: 0, dots: 0, escapes: 0, port: 0, changed: 0 };
    fc.assert(
      fc.property(urlText, (url) => {
        const n = expectSameAsParser(url);
        if (n === undefined) return;
        seen.fast++;
        if (/^https?:\/\/[^/?#]*@/.test(url)) seen.userinfo++;
        if (n.kind === 'ipv6') seen.ipv6++;
        if (n.kind === 'ipv4' && url.includes('[')) seen.mapped++;
        if (n.kind === 'ipv4' && !url.includes(`/${n.host}`) && !url.includes(`@${n.host}`)) seen.oddIpv4++;
        if (/\/(\.|%2e){1,2}(\/|$|[?#])/i.test(url)) seen.dots++;
        if (url.includes('%')) seen.escapes++;
        if (/:\d*[/?#]|:\d*$/.test(url.slice(8))) seen.port++;
        if (n.href !== url) seen.changed++;
      }),
      { numRuns: 20_000 },
    );
    // The generator does reach every branch of the fast path.
    for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(100);
  });

  it('leaves the labels of the host it read for the matcher, exactly as they are computed afresh', () => {
    let names = 0;
    fc.assert(
      fc.property(urlText, (url) => {
        const n = fastNormalize(url);
        if (n?.kind !== 'name') return;
        names++;
        const fresh = new HostLabels();
        const count = fresh.of(n.host.split('').join('')); // another string, same text
        expect(hostLabels.of(n.host)).toBe(count);
        expect([...hostLabels.hashes.subarray(0, count)]).toEqual([...fresh.hashes.subarray(0, count)]);
        expect([...hostLabels.ends.subarray(0, count)]).toEqual([...fresh.ends.subarray(0, count)]);
      }),
      { numRuns: 10_000 },
    );
    expect(names).toBeGreaterThan(500);
  });

  it('takes every URL that is already canonical, and hands it back unchanged', () => {
    fc.assert(
      fc.property(urlText, (url) => {
        const slow = reference(url);
        // Canonical and within the fast path's reach: no punycode, no character it leaves to the
        // parser (WHATWG keeps `^`, `|` and a few more in paths as they are).
        if (slow === undefined || !CANONICAL_REACH.test(slow.href) || slow.href.includes('xn--')) return;
        const again = fastNormalize(slow.href);
        expect(again).toStrictEqual(slow);
        expect(again?.href).toBe(slow.href);
      }),
      { numRuns: 5_000 },
    );
  });
});

describe('URL host number parsers', () => {
  const whatwgHost = (host: string): string | undefined => URL.parse(`http://${host}/`)?.hostname;
  const dotted = (n: number): string => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

  it('parseUrlIpv4 reads every IPv4 form as WHATWG does, and fails where it fails', () => {
    fc.assert(
      fc.property(ipv4Text, (text) => {
        const v4 = parseUrlIpv4(text, 0, text.length);
        const expected = whatwgHost(text);
        if (v4 < 0) expect(expected === undefined || !/^[\d.]+$/.test(expected)).toBe(true);
        else expect(expected).toBe(dotted(v4));
      }),
      { numRuns: 5_000 },
    );
  });

  it('parseUrlIpv6 and formatUrlIpv6 read and write IPv6 as WHATWG does', () => {
    const pieces = new Uint16Array(8);
    fc.assert(
      fc.property(ipv6Text, (text) => {
        const ok = parseUrlIpv6(text, 0, text.length, pieces);
        const expected = whatwgHost(`[${text}]`);
        if (!ok) expect(expected).toBeUndefined();
        else expect(formatUrlIpv6(pieces)).toBe(expected);
      }),
      { numRuns: 5_000 },
    );
  });
});
