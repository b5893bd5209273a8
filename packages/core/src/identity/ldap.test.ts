import fc from 'fast-check';
import { FilterParser, ResultCodeError, type ClientOptions, type Filter, type SearchOptions } from 'ldapts';
import { describe, expect, it } from 'vitest';
import { LdapDirectory, type LdapClient } from './ldap.js';
import type { LdapEntry } from './ldap-values.js';

// A stand-in Active Directory, for what slapd cannot show: AD's attributes, its bind
// diagnostics and LDAP_MATCHING_RULE_IN_CHAIN. It answers by matching the filter ldapts would
// send (ldapts's own Filter.matches), so what it checks is the filter objects the directory built.
/** undefined for a good bind, else the diagnostic message of the refusal. */
type BindAnswer = string | undefined;

interface Call {
  base: string;
  filter: string;
  options: SearchOptions;
}

const BASE = 'DC=corp,DC=example';
const ANA = `CN=Ana Archer,OU=Staff,${BASE}`;
const NOW = Date.parse('2026-03-01T08:00:00Z');

function fakeAd(bindResult: (dn: string, pw: string) => BindAnswer): {
  make: (o: ClientOptions) => LdapClient;
  calls: Call[];
  binds: string[];
} {
  const calls: Call[] = [];
  const binds: string[] = [];
  const users: LdapEntry[] = [
    {
      dn: ANA,
      objectCategory: 'person',
      objectClass: ['top', 'person', 'organizationalPerson', 'user'],
      sAMAccountName: 'ana',
      displayName: 'Ana Archer',
      userAccountControl: '512',
      'msDS-User-Account-Control-Computed': '0',
      accountExpires: '9223372036854775807',
      pwdLastSet: '134160534000000000', // 2026-02-20T09:30:00Z
    },
  ];
  const make = (): LdapClient => ({
    bind: (dn, pw) => {
      binds.push(dn);
      const r = bindResult(dn, pw ?? '');
      if (r === undefined) return Promise.resolve();
      const err = Object.assign(Object.create(ResultCodeError.prototype) as ResultCodeError, { code: 49, message: r });
      return Promise.reject(err);
    },
    startTLS: () => Promise.resolve(),
    modify: () => Promise.resolve(),
    unbind: () => Promise.resolve(),
    search: (base, options = {}) => {
      const filter = options.filter as Filter | undefined;
      calls.push({ base, filter: filter?.toString() ?? '', options });
      if (base === BASE && options.scope === 'base')
        return Promise.resolve({
          searchEntries: [{ dn: BASE, maxPwdAge: '-36288000000000', lockoutDuration: '-18000000000' }],
        });
      const text = filter?.toString() ?? '';
      if (text.includes('1.2.840.113556.1.4.1941')) {
        // The server resolves the chain: Ana is in ERP Users through two levels of nesting.
        return Promise.resolve({
          searchEntries: text.includes(`:=${ANA})`)
            ? ['ERP Users', 'Office', 'Staff'].map((cn) => ({ dn: `CN=${cn},OU=Groups,${BASE}`, cn }))
            : [],
        });
      }
      const flat = (e: LdapEntry): Record<string, string> =>
        Object.fromEntries(
          Object.entries(e).map(([k, v]) => [k, Array.isArray(v) ? String(v[v.length - 1]) : String(v)]),
        );
      return Promise.resolve({ searchEntries: users.filter((u) => filter?.matches(flat(u)) ?? true) });
    },
  });
  return { make, calls, binds };
}

function adDirectory(fake: ReturnType<typeof fakeAd>): LdapDirectory {
  return new LdapDirectory({
    url: 'ldaps://dc1.corp.example',
    flavor: 'active-directory',
    bindDn: 'CN=tandem-svc,OU=Service,DC=corp,DC=example',
    bindPassword: 'svc-pw',
    baseDn: BASE,
    clock: { now: () => NOW, sleep: () => Promise.resolve() },
    createClient: fake.make,
  });
}

const svcOrAna = (dn: string, pw: string): BindAnswer =>
  (dn.startsWith('CN=tandem-svc') && pw === 'svc-pw') || (dn === ANA && pw === 'ana-pw')
    ? undefined
    : '80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 52e, v4563';

describe('LdapDirectory on Active Directory (a stand-in server)', () => {
  it('signs in: groups through LDAP_MATCHING_RULE_IN_CHAIN, password expiry from pwdLastSet and maxPwdAge', async () => {
    const fake = fakeAd(svcOrAna);
    const r = await adDirectory(fake).authenticate('ana', 'ana-pw', { source: 'x' });
    expect(r.user).toMatchObject({ name: 'ana', dn: ANA, displayName: 'Ana Archer' });
    expect(r.groups.map((g) => g.name)).toEqual(['ERP Users', 'Office', 'Staff']);
    expect(r.user.state.passwordExpiresAt).toBe('2026-04-03T09:30:00.000Z');
    expect(r.passwordExpiresInMs).toBeUndefined(); // more than 14 days left
    const chain = fake.calls.find((c) => c.filter.includes('1.2.840.113556.1.4.1941'));
    expect(chain?.filter).toBe(`(&(objectClass=group)(member:1.2.840.113556.1.4.1941:=${ANA}))`);
    expect(chain?.options.attributes).toEqual(['cn', 'description']);
    // The service account searched; the user's own bind checked the password.
    expect(fake.binds).toEqual(['CN=tandem-svc,OU=Service,DC=corp,DC=example', ANA]);
  });

  it("AD's bind diagnostic says why: locked (775) even though the state was not yet re-read as locked", async () => {
    const fake = fakeAd((dn, pw) =>
      dn === ANA
        ? '80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data 775, v4563'
        : svcOrAna(dn, pw),
    );
    await expect(adDirectory(fake).authenticate('ana', 'ana-pw', { source: 'x' })).rejects.toMatchObject({
      reason: 'locked',
    });
    const wrong = fakeAd(svcOrAna);
    await expect(adDirectory(wrong).authenticate('ana', 'nope', { source: 'x' })).rejects.toMatchObject({
      reason: 'bad-credentials',
    });
  });

  it('a hostile name reaches the server as a value: the filter parses back to exactly that name', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom(
            '*)(uid=*',
            '*',
            'ana)(|(sAMAccountName=*',
            '\\2a',
            'a\\',
            '(',
            ')',
            'ana*',
            'x)(objectClass=*',
          ),
          fc
            .string({ minLength: 1, maxLength: 30 })
            .filter((s) => ![...s].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)),
        ),
        async (name) => {
          const fake = fakeAd(svcOrAna);
          const d = adDirectory(fake);
          const found = await d.findUser(name);
          if (name !== 'ana') expect(found).toBeUndefined();
          const sent = fake.calls.find((c) => c.filter.includes('sAMAccountName'));
          expect(sent).toBeDefined();
          // The text form ldapts made escapes the name; parsing it gives back one equality on it.
          const parsed = FilterParser.parseString(sent!.filter) as unknown as {
            filters: { attribute?: string; value?: unknown }[];
          };
          const eq = parsed.filters.find((f) => f.attribute === 'sAMAccountName');
          expect(String(eq?.value)).toBe(name);
          expect(parsed.filters).toHaveLength(2);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('an unreachable server (connection refused) is directory-unreachable, retryable', async () => {
    const d = new LdapDirectory({
      url: 'ldap://127.0.0.1:1',
      flavor: 'active-directory',
      bindDn: 'x',
      bindPassword: 'y',
      baseDn: BASE,
      connectTimeoutMs: 2000,
    });
    await expect(d.authenticate('ana', 'pw', { source: 'x' })).rejects.toMatchObject({
      reason: 'directory-unreachable',
      retryable: true,
    });
    await expect(d.findUser('ana')).rejects.toMatchObject({ reason: 'directory-unreachable' });
  });

  it('refuses a bad administrator filter or attribute name at construction', () => {
    expect(
      () =>
        adDirectory(fakeAd(svcOrAna)) &&
        new LdapDirectory({
          url: 'ldap://x',
          flavor: 'openldap',
          bindDn: 'a',
          bindPassword: 'b',
          baseDn: 'c',
          userFilter: '(&(',
        }),
    ).toThrow(expect.objectContaining({ code: 'TANDEM_INVALID_INPUT' }));
    expect(
      () =>
        new LdapDirectory({
          url: 'ldap://x',
          flavor: 'openldap',
          bindDn: 'a',
          bindPassword: 'b',
          baseDn: 'c',
          nameAttribute: 'uid)(x',
        }),
    ).toThrow(expect.objectContaining({ code: 'TANDEM_INVALID_INPUT' }));
  });
});

describe('LdapDirectory.close', () => {
  it('closes the connections of calls still running; later calls open new ones', async () => {
    let unbinds = 0;
    let release: () => void = () => undefined;
    const hold = new Promise<void>((r) => (release = r));
    let reached: () => void = () => undefined;
    const inSearch = new Promise<void>((r) => (reached = r));
    const fake = fakeAd(svcOrAna);
    const d = new LdapDirectory({
      url: 'ldap://dc1.corp.example',
      flavor: 'active-directory',
      bindDn: 'CN=tandem-svc,OU=Service,DC=corp,DC=example',
      bindPassword: 'svc-pw',
      baseDn: BASE,
      createClient: (o) => {
        const c = fake.make(o);
        return {
          ...c,
          search: async (base, options) => {
            reached();
            await hold;
            return c.search(base, options);
          },
          unbind: () => {
            unbinds++;
            return Promise.resolve();
          },
        };
      },
    });
    const running = d.findUser('ana');
    await inSearch;
    await d.close();
    expect(unbinds).toBe(1);
    release();
    await running;
    expect((await d.findUser('ana'))?.name).toBe('ana');
  });
});
