// A real LDAP sign-in through the management server: a real OpenLDAP slapd (ppolicy, dynlist
// for nested memberOf) behind the server's LdapDirectory; devices enroll and sign in over HTTP.
import { LdapDirectory } from '@tandem/core/identity';
import { DIRECTORY_FIXTURE, slapdProblem, startSlapd, type TestSlapd } from '@tandem/core/identity/testing';
import { ManagementError } from '@tandem/core/management';
import { integrationGate } from '@tandem/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvents, startFixture, type Fixture } from './api.test-helper.js';

const gate = await integrationGate('slapd', slapdProblem, 'apt-get install slapd ldap-utils (the .ci/run step does)');
const PW = DIRECTORY_FIXTURE.password;

describe.skipIf(!gate.enabled)('LDAP sign-in through the management server (real slapd)', () => {
  let slapd: TestSlapd;
  let directory: LdapDirectory;
  let f: Fixture;
  beforeAll(async () => {
    slapd = await startSlapd({ fixture: DIRECTORY_FIXTURE });
    directory = new LdapDirectory({
      url: slapd.url,
      flavor: 'openldap',
      bindDn: slapd.serviceDn,
      bindPassword: slapd.servicePassword,
      baseDn: slapd.baseDn,
      userBaseDn: slapd.peopleDn,
      groupBaseDn: slapd.groupsDn,
      passwordPolicyDn: slapd.policyDn,
    });
    f = await startFixture({ directory });
    await f.admin.putWorkspaceKey('root', 'quickstart');
    // staff holds team, team holds squad, squad holds alice: only nested membership gives it her.
    await f.admin.assign('root', { workspace: 'quickstart', groups: [`cn=staff,${slapd.groupsDn}`], lease: 'P1D' });
  }, 120_000);
  afterAll(async () => {
    await f?.close();
    await directory?.close?.();
    await slapd?.stop();
  });

  async function failure(p: Promise<unknown>): Promise<ManagementError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ManagementError);
    return err as ManagementError;
  }

  it('enrolls and signs in against slapd; the group reached through nested membership decides the assignment', async () => {
    const a = await f.endpoint('alice');
    const enrolled = await a.client.enroll({ user: 'alice', password: PW, hostName: 'alice-pc' });
    expect(enrolled.signIn.user).toBe('alice');
    expect(enrolled.signIn.groups).toEqual(
      expect.arrayContaining([`cn=squad,${slapd.groupsDn}`, `cn=team,${slapd.groupsDn}`, `cn=staff,${slapd.groupsDn}`]),
    );
    const again = await a.client.signIn({ user: 'alice', password: PW });
    expect(again.signIn.user).toBe('alice');

    const reply = await a.client.checkIn({ events: sampleEvents('a1a1a1a1') });
    expect(reply.status).toBe('changed');
    if (reply.status !== 'changed') return;
    expect(reply.workspaces.map((w) => w.workspace)).toEqual(['quickstart']);
    expect(reply.envelopes.map((e) => e.workspace)).toEqual(['quickstart']);

    // hank is in no group: he signs in, and gets nothing.
    const h = await f.endpoint('hank');
    await h.client.enroll({ user: 'hank', password: PW, hostName: 'hank-pc' });
    const none = await h.client.checkIn({ events: [] });
    expect(none.status).toBe('changed');
    if (none.status === 'changed') expect(none.workspaces).toEqual([]);

    // A wrong password is refused as such.
    const wrong = await failure(a.client.signIn({ user: 'alice', password: 'not-the-password' }));
    expect(wrong.reason).toBe('bad-credentials');
  });

  it('a locked account is refused with reason locked, also with the right password', async () => {
    const e = await f.endpoint('erin');
    for (let i = 0; i < slapd.policy.maxFailure; i++) {
      const err = await failure(e.client.enroll({ user: 'erin', password: `wrong-${i}`, hostName: 'erin-pc' }));
      expect(err.status).toBe(401);
    }
    const locked = await failure(e.client.enroll({ user: 'erin', password: PW, hostName: 'erin-pc' }));
    expect(locked.status).toBe(401);
    expect(locked.code).toBe('TANDEM_AUTH');
    expect(locked.reason).toBe('locked');
    expect(await f.store.getDevice(e.device.deviceId)).toBeUndefined();
  });
});
