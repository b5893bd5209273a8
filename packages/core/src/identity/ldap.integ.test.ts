import { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integrationGate } from '../testing/integration.js';
import { DIRECTORY_FIXTURE, directoryConformanceSuite } from './conformance.js';
import { LdapDirectory } from './ldap.js';
import { slapdProblem, startSlapd, type TestSlapd } from './slapd.test-helper.js';

const gate = await integrationGate('slapd', slapdProblem, 'apt-get install slapd ldap-utils (the .ci/run step does)');

function directoryFor(
  slapd: TestSlapd,
  extra: Partial<ConstructorParameters<typeof LdapDirectory>[0]> = {},
): LdapDirectory {
  return new LdapDirectory({
    url: slapd.url,
    flavor: 'openldap',
    bindDn: slapd.serviceDn,
    bindPassword: slapd.servicePassword,
    baseDn: slapd.baseDn,
    userBaseDn: slapd.peopleDn,
    groupBaseDn: slapd.groupsDn,
    passwordPolicyDn: slapd.policyDn,
    ...extra,
  });
}

describe.skipIf(!gate.enabled)(
  'LdapDirectory against a real slapd (ppolicy, dynlist): the shared directory suite',
  () => {
    directoryConformanceSuite(it, async (fixture) => {
      const slapd = await startSlapd({ fixture });
      const directory = directoryFor(slapd);
      return {
        directory,
        maxFailures: slapd.policy.maxFailure,
        changePassword: async (name, old, pw) => {
          // pwdChangedTime has whole seconds: let one pass so "changed since" is strictly later.
          await new Promise((r) => setTimeout(r, 1100));
          await directory.changePassword(name, old, pw);
        },
        dispose: () => slapd.stop(),
      };
    });
  },
);

describe.skipIf(!gate.enabled)('LdapDirectory against a real slapd', () => {
  let slapd: TestSlapd;
  beforeAll(async () => {
    slapd = await startSlapd({ fixture: DIRECTORY_FIXTURE });
  }, 120_000);
  afterAll(async () => {
    await slapd?.stop();
  });

  async function raw(dn: string, attributes: string[]): Promise<Record<string, unknown>> {
    const c = new Client({ url: slapd.url, timeout: 10_000 });
    try {
      await c.bind(slapd.serviceDn, slapd.servicePassword);
      const { searchEntries } = await c.search(dn, { scope: 'base', attributes });
      return searchEntries[0] ?? {};
    } finally {
      await c.unbind();
    }
  }

  it('the server does the work: dynlist computes nested memberOf, ppolicy writes pwdAccountLockedTime', async () => {
    const alice = await raw(slapd.userDn('alice'), ['memberOf']);
    expect([alice['memberOf']].flat().map(String).sort()).toEqual(
      ['squad', 'staff', 'team'].map((g) => `cn=${g},${slapd.groupsDn}`),
    );
    const d = directoryFor(slapd);
    for (let i = 0; i < slapd.policy.maxFailure; i++)
      await d.authenticate('hank', `wrong-${i}`, { source: 'x' }).catch(() => undefined);
    const hank = await raw(slapd.userDn('hank'), ['pwdAccountLockedTime', 'pwdFailureTime']);
    expect(String(hank['pwdAccountLockedTime'])).toMatch(/^\d{14}Z$/);
    // A locked bind fails with error 49 exactly like a wrong password: only the attribute tells.
    const c = new Client({ url: slapd.url });
    await expect(c.bind(slapd.userDn('hank'), DIRECTORY_FIXTURE.password)).rejects.toMatchObject({ code: 49 });
    await c.unbind();
    await expect(d.authenticate('hank', DIRECTORY_FIXTURE.password, { source: 'x' })).rejects.toMatchObject({
      reason: 'locked',
    });
  });

  it('a wrong service password is a configuration error, not a refusal of the user', async () => {
    const d = directoryFor(slapd, { bindPassword: 'wrong' });
    await expect(d.authenticate('alice', DIRECTORY_FIXTURE.password, { source: 'x' })).rejects.toMatchObject({
      code: 'TANDEM_HOST',
      details: { reason: 'service-account-refused' },
    });
  });

  it('an unreachable server is a retryable directory-unreachable refusal', async () => {
    const d = directoryFor(slapd, { url: 'ldap://127.0.0.1:1', connectTimeoutMs: 2000 });
    await expect(d.authenticate('alice', DIRECTORY_FIXTURE.password, { source: 'x' })).rejects.toMatchObject({
      code: 'TANDEM_AUTH',
      reason: 'directory-unreachable',
      retryable: true,
      fault: 'host',
    });
  });
});

describe.skipIf(!gate.enabled)('LdapDirectory over TLS against a real slapd', () => {
  let slapd: TestSlapd;
  beforeAll(async () => {
    slapd = await startSlapd({ fixture: DIRECTORY_FIXTURE, tls: true });
  }, 120_000);
  afterAll(async () => {
    await slapd?.stop();
  });
  const pw = DIRECTORY_FIXTURE.password;

  it('ldaps:// with the server certificate trusted signs in', async () => {
    const d = directoryFor(slapd, { url: slapd.ldapsUrl!, tlsOptions: { ca: [slapd.certificatePem!] } });
    expect((await d.authenticate('alice', pw, { source: 'x' })).groups.map((g) => g.name)).toEqual([
      'squad',
      'staff',
      'team',
    ]);
  });

  it('StartTLS on ldap:// signs in', async () => {
    const d = directoryFor(slapd, {
      startTls: true,
      tlsOptions: { ca: [slapd.certificatePem!] },
    });
    expect((await d.authenticate('alice', pw, { source: 'x' })).user.name).toBe('alice');
  });

  it('an untrusted certificate is refused before any password is sent (ldaps and StartTLS)', async () => {
    const d = directoryFor(slapd, { url: slapd.ldapsUrl! });
    await expect(d.authenticate('alice', pw, { source: 'x' })).rejects.toMatchObject({
      reason: 'directory-unreachable',
    });
    const s = directoryFor(slapd, { startTls: true });
    await expect(s.authenticate('alice', pw, { source: 'x' })).rejects.toMatchObject({
      reason: 'directory-unreachable',
    });
  });

  it('StartTLS checks the certificate against the name expected', async () => {
    const d = directoryFor(slapd, {
      startTls: true,
      tlsOptions: { ca: [slapd.certificatePem!], servername: 'not-this-server.example' },
    });
    const err = (await d.authenticate('alice', pw, { source: 'x' }).catch((e: unknown) => e)) as {
      reason?: string;
      cause?: { code?: string };
    };
    expect(err.reason).toBe('directory-unreachable');
    expect(err.cause?.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
  });
});
