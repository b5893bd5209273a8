import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  adAccount,
  adBindRefusal,
  formatGeneralizedTime,
  openLdapAccount,
  parseAdInterval,
  parseFileTime,
  parseGeneralizedTime,
} from './ldap-values.js';

const now = Date.parse('2026-03-01T08:00:00Z');
// Values in the exact forms Active Directory returns them (ldapsearch / ADSI output).
const FT_2026_01_15_1200 = '134129520000000000'; // 2026-01-15T12:00:00Z
const FT_2026_03_01_0750 = '134168250000000000'; // 2026-03-01T07:50:00Z
const NEVER = '9223372036854775807';
const MAX_PWD_AGE_42_DAYS = '-36288000000000';
const LOCKOUT_30_MIN = '-18000000000';

describe('Active Directory attribute values', () => {
  it('FILETIME: 100-ns intervals since 1601; 0 and 2^63-1 mean never', () => {
    expect(new Date(parseFileTime(FT_2026_01_15_1200)!).toISOString()).toBe('2026-01-15T12:00:00.000Z');
    expect(parseFileTime('0')).toBeUndefined();
    expect(parseFileTime(NEVER)).toBeUndefined();
    expect(parseFileTime('garbage')).toBeUndefined();
    expect(parseAdInterval(MAX_PWD_AGE_42_DAYS)).toBe(42 * 86_400_000);
    expect(parseAdInterval('-9223372036854775808')).toBeUndefined();
    expect(parseAdInterval('0')).toBeUndefined();
  });

  it('a normal account: password expiry from pwdLastSet and the domain maxPwdAge', () => {
    const a = adAccount(
      {
        dn: 'CN=Ana,OU=Staff,DC=corp,DC=example',
        userAccountControl: '512',
        'msDS-User-Account-Control-Computed': '0',
        accountExpires: NEVER,
        pwdLastSet: FT_2026_01_15_1200,
      },
      { maxPwdAge: MAX_PWD_AGE_42_DAYS, lockoutDuration: LOCKOUT_30_MIN },
      now,
    );
    expect(a.state).toEqual({
      disabled: false,
      locked: false,
      lockedUntil: undefined,
      expired: false,
      passwordChangedAt: '2026-01-15T12:00:00.000Z',
      passwordExpiresAt: '2026-02-26T12:00:00.000Z',
    });
    expect(a.passwordExpired).toBe(true); // 42 days after 15 January is before 1 March
    expect(a.mustChangePassword).toBe(false);
  });

  it('lockout is read from msDS-User-Account-Control-Computed 0x10, not userAccountControl', () => {
    const a = adAccount(
      {
        dn: 'x',
        userAccountControl: '512',
        'msDS-User-Account-Control-Computed': '16',
        lockoutTime: FT_2026_03_01_0750,
        accountExpires: '0',
        pwdLastSet: FT_2026_01_15_1200,
      },
      { lockoutDuration: LOCKOUT_30_MIN },
      now,
    );
    expect(a.state.locked).toBe(true);
    expect(a.state.lockedUntil).toBe('2026-03-01T08:20:00.000Z');
    // The stale lockout bit in userAccountControl alone does not lock.
    expect(adAccount({ dn: 'x', userAccountControl: String(512 | 0x10) }, {}, now).state.locked).toBe(false);
  });

  it('disabled (UAC 0x2), expired account, password expired flag 0x800000, must change (pwdLastSet 0), never expires (0x10000)', () => {
    expect(adAccount({ dn: 'x', userAccountControl: '514' }, {}, now).state.disabled).toBe(true);
    expect(
      adAccount({ dn: 'x', userAccountControl: '512', accountExpires: FT_2026_01_15_1200 }, {}, now).state.expired,
    ).toBe(true);
    expect(
      adAccount({ dn: 'x', userAccountControl: '512', 'msDS-User-Account-Control-Computed': '8388608' }, {}, now)
        .passwordExpired,
    ).toBe(true);
    expect(adAccount({ dn: 'x', userAccountControl: '512', pwdLastSet: '0' }, {}, now).mustChangePassword).toBe(true);
    const never = adAccount(
      { dn: 'x', userAccountControl: '66048', pwdLastSet: FT_2026_01_15_1200 },
      { maxPwdAge: MAX_PWD_AGE_42_DAYS },
      now,
    );
    expect(never.state.passwordExpiresAt).toBeUndefined();
    expect(never.passwordExpired).toBe(false);
  });

  it('msDS-UserPasswordExpiryTimeComputed wins over maxPwdAge (fine-grained policies)', () => {
    const a = adAccount(
      {
        dn: 'x',
        userAccountControl: '512',
        pwdLastSet: FT_2026_01_15_1200,
        'msDS-UserPasswordExpiryTimeComputed': '134170000000000000',
      },
      { maxPwdAge: MAX_PWD_AGE_42_DAYS },
      now,
    );
    expect(a.passwordExpired).toBe(false);
    expect(a.state.passwordExpiresAt).toBe(
      new Date(Number(134170000000000000n / 10000n - 11644473600000n)).toISOString(),
    );
  });

  it("bind diagnostics: AD's data codes", () => {
    const msg = (code: string): string =>
      `80090308: LdapErr: DSID-0C09044E, comment: AcceptSecurityContext error, data ${code}, v4563\u0000 Code: 0x31`;
    expect(adBindRefusal(msg('52e'))).toBe('bad-credentials');
    expect(adBindRefusal(msg('525'))).toBe('bad-credentials');
    expect(adBindRefusal(msg('775'))).toBe('locked');
    expect(adBindRefusal(msg('533'))).toBe('disabled');
    expect(adBindRefusal(msg('701'))).toBe('expired');
    expect(adBindRefusal(msg('532'))).toBe('password-expired');
    expect(adBindRefusal(msg('773'))).toBe('must-change-password');
    expect(adBindRefusal('Invalid Credentials Code: 0x31')).toBeUndefined();
  });
});

describe('OpenLDAP ppolicy attribute values', () => {
  const policy = { pwdMaxAge: 90 * 86_400, pwdLockoutDuration: 600 };
  it('GeneralizedTime forms', () => {
    expect(parseGeneralizedTime('20260301080000Z')).toBe(now);
    expect(parseGeneralizedTime('20260301080000.250Z')).toBe(now + 250);
    expect(parseGeneralizedTime('202603010800Z')).toBe(now);
    expect(parseGeneralizedTime('20260301090000+0100')).toBe(now);
    expect(parseGeneralizedTime('yesterday')).toBeUndefined();
    expect(formatGeneralizedTime(now)).toBe('20260301080000Z');
  });

  it('GeneralizedTime round-trips any second', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_000_000_000 }), (s) => {
        expect(parseGeneralizedTime(formatGeneralizedTime(s * 1000))).toBe(s * 1000);
      }),
    );
  });

  it('pwdAccountLockedTime: locked for pwdLockoutDuration; 000001010000Z is an administrator lock (disabled)', () => {
    const locked = openLdapAccount({ dn: 'x', pwdAccountLockedTime: '20260301075500Z' }, policy, now);
    expect(locked.state).toMatchObject({ locked: true, lockedUntil: '2026-03-01T08:05:00.000Z', disabled: false });
    expect(openLdapAccount({ dn: 'x', pwdAccountLockedTime: '20260301074000Z' }, policy, now).state.locked).toBe(false);
    expect(
      openLdapAccount({ dn: 'x', pwdAccountLockedTime: '20260301074000Z' }, { pwdLockoutDuration: 0 }, now).state
        .locked,
    ).toBe(true);
    expect(openLdapAccount({ dn: 'x', pwdAccountLockedTime: '000001010000Z' }, policy, now).state).toMatchObject({
      disabled: true,
      locked: false,
    });
  });

  it('password age and expiry from pwdChangedTime and pwdMaxAge; grace logins mean expired; pwdReset means must change', () => {
    const a = openLdapAccount({ dn: 'x', pwdChangedTime: '20251215080000Z' }, policy, now);
    expect(a.state.passwordChangedAt).toBe('2025-12-15T08:00:00.000Z');
    expect(a.state.passwordExpiresAt).toBe('2026-03-15T08:00:00.000Z');
    expect(a.passwordExpired).toBe(false);
    expect(openLdapAccount({ dn: 'x', pwdChangedTime: '20251115080000Z' }, policy, now).passwordExpired).toBe(true);
    expect(openLdapAccount({ dn: 'x', pwdGraceUseTime: ['20260301070000Z'] }, policy, now).passwordExpired).toBe(true);
    expect(openLdapAccount({ dn: 'x', pwdReset: 'TRUE' }, policy, now).mustChangePassword).toBe(true);
  });

  it('account expiry from shadowExpire (days) or pwdEndTime', () => {
    const today = Math.floor(now / 86_400_000);
    expect(openLdapAccount({ dn: 'x', shadowExpire: String(today - 1) }, policy, now).state.expired).toBe(true);
    expect(openLdapAccount({ dn: 'x', shadowExpire: String(today + 1) }, policy, now).state.expired).toBe(false);
    expect(openLdapAccount({ dn: 'x', pwdEndTime: '20260201000000Z' }, policy, now).state.expired).toBe(true);
  });
});
