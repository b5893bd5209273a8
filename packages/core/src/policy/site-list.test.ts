import { describe, expect, it } from 'vitest';
import { TandemError } from '../errors.js';
import { importEnterpriseSiteList } from './site-list.js';
import { parseXml } from './xml.js';
import { compileUrlMatcher } from './url-matcher.js';
import { normalizeUrl } from './url-normalize.js';
import { compileUrlRule, describeUrlRule } from './url-rules.js';

// The layout of a list saved by the Enterprise Mode Site List Manager (schema v.2).
const LIST = `<?xml version="1.0" encoding="utf-8"?>
<site-list version="205">
  <!-- File creation header -->
  <created-by>
    <tool>EnterpriseSitelistManager</tool>
    <version>10240</version>
    <date-created>20150728.135021</date-created>
  </created-by>
  <!-- Begin Site List -->
  <site url="www.cpandl.com">
    <compat-mode>IE8Enterprise</compat-mode>
    <open-in>IE11</open-in>
  </site>
  <site url="contoso.com">
    <compat-mode>default</compat-mode>
    <open-in>IE11</open-in>
  </site>
  <site url="contoso.com/travel">
    <compat-mode>default</compat-mode>
    <open-in allow-redirect="true">None</open-in>
  </site>
  <site url="relecloud.com"/>
  <site url="fabrikam.com:8080/app">
    <open-in>ie11</open-in>
  </site>
  <site url="https://adatum.com/hr">
    <open-in>MSEdge</open-in>
  </site>
  <site url="10.1.2.3">
    <open-in>IE11</open-in>
  </site>
  <site url="*.wingtip.com">
    <open-in>IE11</open-in>
  </site>
  <site url="woodgrove.com/a?b=c">
    <open-in>IE11</open-in>
  </site>
  <site url="tailspin.com">
    <open-in>Chrome</open-in>
  </site>
  <site url="bad host.com">
    <open-in>IE11</open-in>
  </site>
  <site>
    <open-in>IE11</open-in>
  </site>
  <site url="CONTOSO.com">
    <open-in>MSEdge</open-in>
  </site>
  <site url="northwind.example/a&amp;b">
    <open-in>IE11</open-in>
  </site>
</site-list>`;

describe('importEnterpriseSiteList', () => {
  const result = importEnterpriseSiteList(LIST, { source: 'sites.xml' });

  it('maps IE11 to the guest, MSEdge to the host, None to stay', () => {
    expect(result.version).toBe('205');
    const byUrl = Object.fromEntries(result.sites.map((s) => [s.url, s.rule]));
    expect(byUrl['www.cpandl.com']).toEqual({
      match: { domainSuffix: 'www.cpandl.com' },
      direction: 'any',
      target: 'guest',
    });
    expect(byUrl['contoso.com/travel']).toEqual({
      match: { domainSuffix: 'contoso.com' },
      pathPrefix: '/travel',
      direction: 'host-to-guest',
      target: 'host',
    });
    expect(byUrl['relecloud.com']).toEqual({
      match: { domainSuffix: 'relecloud.com' },
      direction: 'host-to-guest',
      target: 'host',
    });
    expect(byUrl['fabrikam.com:8080/app']).toEqual({
      match: { domainSuffix: 'fabrikam.com' },
      pathPrefix: '/app',
      port: 8080,
      direction: 'any',
      target: 'guest',
    });
    expect(byUrl['https://adatum.com/hr']).toEqual({
      match: { domainSuffix: 'adatum.com' },
      pathPrefix: '/hr',
      scheme: 'https',
      direction: 'any',
      target: 'host',
    });
    expect(byUrl['10.1.2.3']).toEqual({ match: { host: '10.1.2.3' }, direction: 'any', target: 'guest' });
    expect(byUrl['northwind.example/a&b']).toEqual({
      match: { domainSuffix: 'northwind.example' },
      pathPrefix: '/a&b',
      direction: 'any',
      target: 'guest',
    });
  });

  it('reports every entry it cannot map, with its line and why', () => {
    const reasons = result.unmapped.map((u) => [u.url, u.reason]);
    expect(reasons).toEqual([
      ['*.wingtip.com', expect.stringMatching(/wildcards are not part/)],
      ['woodgrove.com/a?b=c', expect.stringMatching(/query or fragment/)],
      ['tailspin.com', '<open-in>Chrome</open-in> is not IE11, MSEdge or None'],
      ['bad host.com', expect.stringMatching(/character a host cannot have/)],
      ['', 'the <site> has no url attribute'],
      ['CONTOSO.com', expect.stringMatching(/repeats the site on line 14/)],
    ]);
    const tailspin = result.unmapped.find((u) => u.url === 'tailspin.com');
    expect(tailspin?.line).toBe(LIST.split('\n').findIndex((l) => l.includes('tailspin.com')) + 1);
  });

  it('decides like the site list: the most specific entry wins', () => {
    const rules = result.sites.map((s, i) =>
      compileUrlRule(s.rule, {
        layer: 'package-default',
        source: 'sites.xml',
        path: `site[${i}]`,
        label: s.url,
        text: describeUrlRule(s.rule),
        appliesTo: 'everyone',
      }),
    );
    const m = compileUrlMatcher(rules);
    const decide = (url: string, dir: 'host-to-guest' | 'guest-to-host' = 'host-to-guest'): string | undefined =>
      m.match(normalizeUrl(url), dir)?.ref.label;
    expect(decide('http://www.contoso.com/')).toBe('contoso.com');
    expect(decide('http://contoso.com/travel/x')).toBe('contoso.com/travel');
    expect(decide('http://contoso.com/travel/x', 'guest-to-host')).toBe('contoso.com'); // None: stays in the guest
    expect(decide('http://fabrikam.com:8080/app/x')).toBe('fabrikam.com:8080/app');
    expect(decide('http://fabrikam.com/app/x')).toBeUndefined();
    expect(decide('http://adatum.com/hr')).toBeUndefined();
    expect(decide('https://adatum.com/hr')).toBe('https://adatum.com/hr');
    expect(decide('http://10.1.2.3/')).toBe('10.1.2.3');
  });

  it('refuses a v1 list and anything that is not a site list', () => {
    expect(() =>
      importEnterpriseSiteList('<rules version="1"><emie><domain>contoso.com</domain></emie></rules>'),
    ).toThrow(/v1.*Convert it/);
    expect(() => importEnterpriseSiteList('<html/>')).toThrow(/root element is <html>/);
    let caught: unknown;
    try {
      importEnterpriseSiteList('<site-list>\n<site url="a">\n</site-list>', { source: 'broken.xml' });
    } catch (err) {
      caught = err;
    }
    expect(TandemError.is(caught, 'TANDEM_INVALID_INPUT')).toBe(true);
    expect((caught as Error).message).toBe('broken.xml:3: not well-formed XML: </site-list> closes <site> (line 2).');
  });

  it('imports an empty list', () => {
    expect(importEnterpriseSiteList('<site-list version="1"/>')).toEqual({ version: '1', sites: [], unmapped: [] });
  });
});

describe('parseXml', () => {
  it('reads elements, attributes, text, entities, CDATA and comments', () => {
    const root = parseXml(
      `<?xml version="1.0"?>\n<!DOCTYPE a>\n<a x='1' y="&lt;&#65;&#x42;&quot;">t&amp;<!-- c --><b/><![CDATA[<raw>]]></a>`,
    );
    expect(root.name).toBe('a');
    expect(root.attributes).toEqual({ x: '1', y: '<AB"' });
    expect(root.text).toBe('t&<raw>');
    expect(root.children.map((c) => c.name)).toEqual(['b']);
    expect(root.line).toBe(3);
  });

  it('takes attributes named like Object.prototype members as ordinary attributes', () => {
    const root = parseXml(`<a constructor="c" toString="t" __proto__="p"/>`);
    expect(Object.keys(root.attributes)).toEqual(['constructor', 'toString', '__proto__']);
    expect(root.attributes['constructor']).toBe('c');
    expect(root.attributes['__proto__']).toBe('p');
  });

  it.each([
    ['<a>', /never closed/],
    ['<a></b>', /closes <a>/],
    ['<a/><b/>', /second root/],
    ['text', /outside the root/],
    ['<a x="1" x="2"/>', /appears twice/],
    ['<a>&bogus;</a>', /unknown entity/],
    ['<a>&amp</a>', /missing ;/],
    ['<!DOCTYPE a [<!ENTITY e "boom">]><a>&e;</a>', /DOCTYPE with declarations/],
    ['', /no root element/],
    ['<a><!-- x</a>', /comment is not closed/],
  ])('refuses %j', (xml, reason) => {
    expect(() => parseXml(xml)).toThrow(reason);
  });
});
